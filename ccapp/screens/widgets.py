"""Widgets shared by the screens: a continuation with its correction lit, a Corr@k chart/table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

PREFILL_SHOWN = 120  # characters of the prefill shown before a continuation


@dataclass(frozen=True)
class Palette:
    """Colours from the app theme (screens pass them in; this module knows no theme)."""

    dim: str = "grey50"
    accent: str = "#F2B94B"
    success: str = "#57AB5A"
    error: str = "#E5534B"
    warning: str = "#F2B94B"

    @classmethod
    def from_theme(cls, theme: Any) -> Palette:
        """Concrete colours from a Textual Theme (CSS variables such as "auto 60%" are not
        colours Rich can draw with)."""
        from textual.color import Color

        foreground = Color.parse(theme.foreground or "#D8DEE9")
        background = Color.parse(theme.background or "#14181E")
        return cls(
            dim=foreground.blend(background, 0.45).hex,
            accent=Color.parse(theme.accent or cls.accent).hex,
            success=Color.parse(theme.success or cls.success).hex,
            error=Color.parse(theme.error or cls.error).hex,
            warning=Color.parse(theme.warning or cls.warning).hex,
        )


def continuation_text(
    prefill: str,
    text: str,
    span: tuple[int, int] | None,
    *,
    label: str | None = None,
    relapse: bool = False,
    header: str = "",
    palette: Palette = Palette(),
) -> Text:
    """The prefill's tail dimmed, the continuation, its correction span highlighted, a badge.

    Model text is added as plain Text, never parsed as markup, so a continuation holding
    "[bold]" or "[/]" is shown as it is.
    """
    out = Text()
    if header:
        out.append(header + "  ", style=f"bold {palette.dim}")
    if label is not None:
        badge = {
            "yes": (" corrected ", palette.success),
            "no": (" not corrected ", palette.error),
            "unparsed": (" unparsed ", palette.warning),
            "error": (" judge error ", palette.warning),
        }
        words, colour = badge.get(label, (f" {label} ", palette.dim))
        out.append(words, style=f"bold reverse {colour}")
        if relapse:
            out.append(" relapse ", style=f"bold reverse {palette.error}")
    if header or label is not None:
        out.append("\n")
    shown = prefill if len(prefill) <= PREFILL_SHOWN else "…" + prefill[-PREFILL_SHOWN:]
    out.append(shown, style=palette.dim)
    if span is None:
        out.append(text)
    else:
        start, end = max(0, span[0]), min(len(text), span[1])
        out.append(text[:start])
        out.append(text[start:end], style=f"bold reverse {palette.accent}")
        out.append(text[end:])
    return out


@dataclass(frozen=True)
class Series:
    """One judge's (or run's) Corr@k curve with its 95% interval."""

    name: str
    ks: list[int]
    corr: list[float]
    low: list[float]
    high: list[float]

    @classmethod
    def from_metrics(cls, name: str, metrics: Mapping[str, Any]) -> Series:
        ks = sorted(int(k) for k in metrics.get("corr", {}))
        ci = metrics.get("ci95", {})
        corr = [float(metrics["corr"][str(k)]) for k in ks]
        low = [float(ci.get(str(k), [c, c])[0]) for k, c in zip(ks, corr)]
        high = [float(ci.get(str(k), [c, c])[1]) for k, c in zip(ks, corr)]
        return cls(name, ks, corr, low, high)


class CorrChart(PlotextPlot):
    """Corr@k against k, one line per series, its 95% interval as a vertical bar at each k."""

    DEFAULT_CSS = """
    CorrChart {
        height: 14;
        min-height: 8;
    }
    """

    def show(self, series: Sequence[Series], title: str = "Corr@k (bars: 95% CI)") -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        plt.xlabel("k (prefill length)")
        drawn = [s for s in series if s.ks]
        top = y_top([v for s in drawn for v in (*s.corr, *s.high)])
        plt.ylim(0, top)
        # plotext's own ticks land on thirds or sixths by the height: quarters read as rates
        ticks = [top * i / 4 for i in range(5)]
        plt.yticks(ticks, [rate_label(t) for t in ticks])
        ks = sorted({k for s in drawn for k in s.ks})
        nudge = (ks[-1] - ks[0]) / 120 if len(ks) > 1 else 0.2
        for index, s in enumerate(drawn):
            colour = ("cyan", "orange", "green", "magenta")[index % 4]
            shift = (index - (len(drawn) - 1) / 2) * nudge
            xs = [k + shift for k in s.ks]
            plt.plot(xs, s.corr, marker="braille", color=colour, label=s.name)
            for x, low, high in zip(xs, s.low, s.high):
                plt.plot([x, x], [low, high], marker="│", color=colour)
        if ks:
            plt.xticks([float(k) for k in ks])
        self.refresh()


# The y axis's tops: each one's quarters are round rates (.01, .02, .03, .04).
Y_TOPS = (0.02, 0.04, 0.08, 0.2, 0.4, 0.8, 1.0)


def y_top(values: Sequence[float]) -> float:
    """The chart's y range, 0 to the least top above every value: the Corr@k of a safe-ish
    model are a few percent, a flat line on a 0-to-1 axis with its intervals invisible."""
    highest = max((v for v in values if v is not None), default=None)
    if highest is None:  # nothing measured yet: the whole range
        return 1.0
    return next((top for top in Y_TOPS if highest <= top), 1.0)


def rate_label(value: float) -> str:
    """A y tick as rates are written: 0, .005, .25, 1."""
    if value in (0, 1):
        return str(int(value))
    return f"{value:.3f}".rstrip("0").lstrip("0")


def many(n: int, noun: str) -> str:
    """ "1 group", "2 groups": a count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def tail(text: str, width: int) -> str:
    """`text` cut to `width` from its start ("…/models/smollm2"): a path's end names it."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1 :]


def fixed_columns(table: DataTable, *columns: tuple[str, int]) -> None:
    """Columns of set widths: a table whose widths follow its content can paint with stale
    widths after a clear-and-refill, so the screens give every column its width."""
    for label, width in columns:
        table.add_column(label, width=width, key=label)


def fill_corr_table(table: DataTable, columns: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Rows per k; for each named metrics dict, Corr@k with its interval (and n)."""
    table.clear(columns=True)
    table.add_column("k", key="k", width=5)
    for name, _ in columns:
        table.add_column(f"{name} Corr@k [95% CI]", width=max(24, min(len(name) + 19, 40)))
    # every requested k (`n` lists them all): a k without yes/no verdicts keeps its row
    ks = sorted({int(k) for _, m in columns for k in (*m.get("corr", {}), *m.get("n", {}))})
    for k in ks:
        cells = [str(k)]
        for _, metrics in columns:
            cells.append(_cell(metrics, str(k)))
        table.add_row(*cells)
    if ks:
        table.add_row("mean", *[_cell(m, "mean") for _, m in columns])


def _cell(metrics: Mapping[str, Any], key: str) -> str:
    value = metrics.get("corr_mean") if key == "mean" else metrics.get("corr", {}).get(key)
    if value is None:
        return "–"
    ci = metrics.get("ci95", {}).get(key)
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"{value:.3f}{interval}"


# The app's own keys, shown on a line of their own under every screen's footer: with them
# in one footer line, a screen's keys pushed `q` and the palette off an 80-column terminal.
# (The letters h e r s t l do the same where no text field has the focus.)
MODE_KEYS = (
    ("F1", "Home"),
    ("F2", "Eval"),
    ("F3", "Runs"),
    ("F4", "Syn"),
    ("F5", "Train"),
    ("F6", "Job"),
    ("q", "Quit"),
    ("^p", "palette"),
)


class ModeBar(Static):
    """The line of the app's mode keys (the bindings themselves are the app's)."""

    DEFAULT_CSS = """
    ModeBar { height: 1; background: $footer-background; color: $footer-foreground; }
    """

    def __init__(self) -> None:
        line = Text()
        for key, text in MODE_KEYS:
            line.append(key, style="bold").append(f" {text}  ")
        super().__init__(line, classes="mode-bar")


def footer() -> ComposeResult:
    """What the bottom of every screen shows: its own keys (a compact footer, so that a
    screen's keys fit 80 columns), and under them the app's mode keys."""
    yield KeyBars(Footer(compact=True, show_command_palette=False), ModeBar())


class KeyBars(Vertical):
    """The two key lines, docked at the bottom together (two docked widgets would overlap)."""

    DEFAULT_CSS = """
    KeyBars { dock: bottom; height: 2; }
    KeyBars > Footer { dock: none; }
    """
