"""Two runs side by side: Corr@k of each, and the difference per k with its paired interval.

Runs on the same requests get a paired bootstrap of the difference (engines/c2eval/comparison.py):
the Δ column's interval, and whether it excludes 0, are the test — not whether the two runs'
own intervals overlap. Runs on other requests show the Δ without an interval, and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Header, Static

from ccapp.screens.base import AppScreen
from ccapp.screens.picker import Choices, Picking
from ccapp.screens.widgets import CorrChart, Series, fixed_columns, footer, tail
from ccapp.store import Run, RunKind, Store, runs


def deltas(
    first: dict[str, Any], second: dict[str, Any]
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(k, first Corr@k, second Corr@k, second - first) for every k either run has, then mean."""
    ks = sorted({int(k) for m in (first, second) for k in (*m.get("corr", {}), *m.get("n", {}))})
    rows: list[tuple[str, float | None, float | None, float | None]] = []
    for k in ks:
        a, b = first.get("corr", {}).get(str(k)), second.get("corr", {}).get(str(k))
        rows.append((str(k), a, b, None if a is None or b is None else round(b - a, 4)))
    a, b = first.get("corr_mean"), second.get("corr_mean")
    rows.append(
        (
            "mean",
            a,
            b,
            None if a is None or b is None or not same_ks(first, second) else round(b - a, 4),
        )
    )
    return rows


def same_ks(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether the two Corr_means average the same k's: else their difference mixes the
    difference of the runs with that of the k's (a mean over 10, 20 vs one over 10, 20, 40)."""
    return set(first.get("corr", {})) == set(second.get("corr", {}))


def paired_cells(comparison: dict[str, Any], key: str) -> tuple[str, str]:
    """(paired 95% CI of Δ, what it says) for k or "mean"; dashes where there is none."""
    if not comparison.get("paired"):
        return "–", "not paired"
    entry = comparison["mean"] if key == "mean" else comparison["by_k"].get(key)
    if not entry or entry.get("ci95") is None:
        return "–", "no Δ"
    interval = f"[{entry['ci95'][0]:+.3f}, {entry['ci95'][1]:+.3f}]"
    if entry["requests"] < 2:
        return interval, "1 request"
    return interval, "excludes 0" if entry["excludes_zero"] else "includes 0"


def pairing_line(comparison: dict[str, Any]) -> str:
    """How the Δ column was tested, or why it could not be."""
    judges = comparison.get("judges", [])
    mixed = (
        f"; judges differ ({judges[0]} vs {judges[1]})"
        if len(judges) == 2 and judges[0] != judges[1]
        else ""
    )
    if not comparison.get("paired"):
        return f"Δ without an interval: cannot pair the runs, {comparison.get('reason')}{mixed}"
    line = (
        f"Δ tested by a paired bootstrap over the {comparison['requests']} shared requests "
        f"({comparison['replicates']} replicates){mixed}"
    )
    if comparison.get("mean") is None and comparison.get("mean_reason"):
        line += f"; no Δ Corr_mean: {comparison['mean_reason']}"
    return line


def comparable(run: Run, candidates: list[Run], pairs: Callable[[Run], bool]) -> list[Run]:
    """The other eval runs, those that pair with `run` first (same requests: a paired Δ),
    newest first."""
    others = [r for r in candidates if r.kind is RunKind.EVAL and r.id != run.id]
    return sorted(others, key=lambda r: (not pairs(r), -r.id))


def compare_picking(run: Run) -> Picking:
    """The other eval runs, those on the same requests first (they get a paired interval)."""

    def read(store: Store) -> Choices:
        from ccapp.engines.c2eval.comparison import pairing_problem

        evals = runs.list_runs(store, kind=RunKind.EVAL)
        paired = {r.id: pairing_problem(store, run, r) is None for r in evals if r.id != run.id}
        rows = [
            (
                str(r.id),
                (
                    str(r.id),
                    tail(r.model, 20),
                    tail(r.judge or "–", 12),
                    tail(r.data, 12),
                    f"{r.corr_mean:.3f}" if r.corr_mean is not None else "–",
                    "yes" if paired[r.id] else "no",
                ),
            )
            for r in comparable(run, evals, lambda r: paired[r.id])
        ]
        return Choices(rows, "No other eval run in this store to compare with (esc goes back).")

    return Picking(
        "compare",
        f"Compare run {run.id} ({tail(run.model, 30)}) with (runs on the same requests first: "
        "those get a paired interval; enter picks, esc cancels):",
        (("id", 4), ("model", 20), ("judge", 12), ("data", 12), ("Corr_mean", 9), ("pairs", 5)),
        read,
    )


@dataclass
class Loaded(Message):
    runs: tuple[Run, Run]
    metrics: tuple[dict[str, Any], dict[str, Any]]
    comparison: dict[str, Any]


class CompareScreen(AppScreen[None]):
    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
        Binding("f", "save_figure", "Figure", id="compare.figure", tooltip="Save Corr@k as PNG"),
    ]

    def __init__(self, first: int, second: int, db_path: Path):
        super().__init__()
        self.ids = (first, second)
        self.db_path = db_path

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading…", id="compare-title", markup=False)
        yield Static("", id="compare-pairing", markup=False)
        yield DataTable(id="compare-table", cursor_type="none", zebra_stripes=True)
        yield CorrChart(id="compare-chart")
        yield from footer()

    def on_mount(self) -> None:
        self.load(self.db_path, self.ids)

    def action_save_figure(self) -> None:
        from ccapp.screens.run_actions import save_figure

        save_figure(self, self.ids, self.db_path)

    # A failure (no such run, an unreadable store) shows as a modal (AppScreen).
    @work(thread=True, exclusive=True, name="Comparing the runs", exit_on_error=False)
    def load(self, db_path: Path, ids: tuple[int, int]) -> None:
        from ccapp.engines.c2eval.comparison import compare_runs, comparison_judges
        from ccapp.engines.c2eval.report import run_metrics

        with Store.open(db_path) as store:
            first, second = (runs.get_run(store, i) for i in ids)
            judges = comparison_judges(store, first, second)
            metrics = tuple(
                run_metrics(store, r, judge) if r.kind is RunKind.EVAL else {}
                for r, judge in zip((first, second), judges)
            )
            comparison = compare_runs(store, first, second, judges)
        self.post_message(Loaded((first, second), metrics, comparison))  # type: ignore[arg-type]

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        # the run compared (b: the page it was asked from) first, Δ = b − a as compare_runs
        (a, b), (ma, mb) = message.runs, message.metrics
        judge_a, judge_b = message.comparison["judges"]
        self.query_one("#compare-title", Static).update(
            f"run {b.id} ({tail(b.model, 40)}, judge {judge_b}) compared with "
            f"run {a.id} ({tail(a.model, 40)}, judge {judge_a})"
        )
        self.query_one("#compare-pairing", Static).update(pairing_line(message.comparison))
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        fixed_columns(
            table,
            ("k", 5),
            (f"run {b.id}", 8),
            (f"run {a.id}", 8),
            (f"Δ {b.id} − {a.id}", 10),
            ("paired 95% CI of Δ", 18),
            ("", 11),
        )

        def cell(value: float | None, signed: bool = False) -> str:
            return "–" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")

        for k, x, y, d in deltas(ma, mb):
            said = paired_cells(message.comparison, k)
            if k == "mean" and not same_ks(ma, mb):
                said = ("–", "k's differ")
            table.add_row(k, cell(y), cell(x), cell(d, signed=True), *said)
        series = [  # in the table's order: this run first
            Series.from_metrics(f"run {r.id}", m)
            for r, m in reversed(list(zip(message.runs, message.metrics)))
            if m
        ]
        self.query_one("#compare-chart", CorrChart).show(series, title="Corr@k")
