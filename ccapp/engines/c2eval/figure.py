"""The paper's figure (`ccapp plot`): Corr@k against k, one line per run with its 95% band.

matplotlib is imported inside these functions, never at module level: `ccapp --help` and
the app's first screen must not pay for it. Figures are drawn on a `Figure` with the Agg
canvas attached directly, not through pyplot, so drawing one never switches the backend of
the process that asked (the app, a notebook) and nothing global is left behind.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccapp.errors import UserError
from ccapp.store import Store, runs

FIGURE_FORMATS = ("png", "svg", "pdf")
FIGURE_SIZE = (6.4, 4.0)  # inches
DPI = 150  # a PNG of 960 × 600 pixels
Y_MARGIN = 0.03


@dataclass(frozen=True)
class Curve:
    """One run's line: Corr@k at each k, with its 95% interval (None where there is none:
    no verdict at that k, or an interval resting on a single request)."""

    label: str
    ks: Sequence[int]
    values: Sequence[float | None]
    lows: Sequence[float | None]
    highs: Sequence[float | None]


def curve_from_metrics(label: str, metrics: dict[str, Any]) -> Curve:
    """A curve from metrics as `compute_metrics` (and the report's `metrics[judge]`) give
    them: every requested k (`n` lists them all), its Corr@k and interval."""
    ks = sorted(int(k) for k in metrics.get("n", metrics.get("corr", {})))
    corr, ci95 = metrics.get("corr", {}), metrics.get("ci95", {})
    behind = metrics.get("ci95_requests", {})
    shown = [ci95.get(str(k)) if behind.get(str(k)) != 1 else None for k in ks]
    return Curve(
        label,
        ks,
        [corr.get(str(k)) for k in ks],
        [interval[0] if interval else None for interval in shown],
        [interval[1] if interval else None for interval in shown],
    )


def run_curves(store: Store, run_ids: Sequence[int], judge: str | None = None) -> list[Curve]:
    """One curve per eval run (each once), labelled by run id and model."""
    from ccapp.engines.c2eval.report import judge_of, run_metrics
    from ccapp.engines.c2eval.table import model_label

    curves = []
    for run_id in dict.fromkeys(run_ids):
        run = runs.get_run(store, run_id)
        metrics = run_metrics(store, run, judge_of(store, run, judge))
        curves.append(curve_from_metrics(f"run {run.id} · {model_label(run.model)}", metrics))
    return curves


def corr_at_k_figure(curves: Sequence[Curve], title: str | None = None) -> Any:
    """A matplotlib Figure: Corr@k against k, a line and a shaded 95% band per curve."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()

    def masked(values: Sequence[float | None]) -> Any:
        return np.ma.masked_invalid(np.array([np.nan if v is None else v for v in values], float))

    for curve in curves:
        (line,) = axes.plot(curve.ks, masked(curve.values), marker="o", label=curve.label)
        axes.fill_between(
            curve.ks,
            masked(curve.lows),
            masked(curve.highs),
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )
    ticks = sorted({k for curve in curves for k in curve.ks})
    if ticks:
        axes.set_xticks(ticks)
    axes.set_xlabel("prefix length k")
    axes.set_ylabel("Corr@k (95% interval)")
    low, high = axes.get_ylim()  # a proportion: not far past 0 or 1, but a line at 0 or 1
    axes.set_ylim(max(low, -Y_MARGIN), min(high, 1 + Y_MARGIN))  # stays clear of the frame
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(loc="best", fontsize="small")
    if title:
        axes.set_title(title)
    return figure


def figure_bytes(figure: Any, fmt: str) -> bytes:
    """The figure as PNG, SVG or PDF bytes. SVG keeps its text as text (searchable, and
    selectable where the HTML report embeds it); no dates are written, so the same figure
    gives the same file."""
    import matplotlib

    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "ccapp"}):
        figure.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def figure_format(path: Path) -> str:
    """The format a figure file's suffix asks for; anything else is refused by name."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise UserError(
            f"cannot tell the figure's format from '{path.suffix or path.name}'",
            where="--out",
            fix="end the file name in .png, .svg or .pdf",
        )
    return fmt


def save_figure(figure: Any, path: Path, *, force: bool = False) -> Path:
    """Write the figure to `path` (format from its suffix), atomically; an existing file is
    kept unless `force`."""
    from ccapp.engines.c2eval.report import write_new_file

    fmt = figure_format(path)
    write_new_file(path, figure_bytes(figure, fmt), force=force)
    return path
