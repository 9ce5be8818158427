"""Two runs side by side: Corr@k of each, and the difference per k."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ccapp.screens.widgets import CorrChart, Series, fixed_columns
from ccapp.store import Run, RunKind, Store, runs


def deltas(
    first: dict[str, Any], second: dict[str, Any]
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(k, first Corr@k, second Corr@k, second - first) for every k either run has, then mean."""
    ks = sorted({int(k) for k in first.get("corr", {})} | {int(k) for k in second.get("corr", {})})
    rows: list[tuple[str, float | None, float | None, float | None]] = []
    for k in ks:
        a, b = first.get("corr", {}).get(str(k)), second.get("corr", {}).get(str(k))
        rows.append((str(k), a, b, None if a is None or b is None else round(b - a, 4)))
    a, b = first.get("corr_mean"), second.get("corr_mean")
    rows.append(("mean", a, b, None if a is None or b is None else round(b - a, 4)))
    return rows


@dataclass
class Loaded(Message):
    runs: tuple[Run, Run]
    metrics: tuple[dict[str, Any], dict[str, Any]]


class CompareScreen(Screen[None]):
    CSS_PATH = "compare.tcss"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="compare.back")]

    def __init__(self, first: int, second: int, db_path: Path):
        super().__init__()
        self.ids = (first, second)
        self.db_path = db_path

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading…", id="compare-title", markup=False)
        yield DataTable(id="compare-table", cursor_type="none", zebra_stripes=True)
        yield CorrChart(id="compare-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load(self) -> None:
        from ccapp.engines.report import run_metrics

        with Store.open(self.db_path) as store:
            pair = tuple(runs.get_run(store, i) for i in self.ids)
            metrics = tuple(
                run_metrics(store, r, r.judge) if r.kind is RunKind.EVAL else {} for r in pair
            )
        self.post_message(Loaded(pair, metrics))  # type: ignore[arg-type]

    @on(Loaded)
    def show(self, message: Loaded) -> None:
        (a, b), (ma, mb) = message.runs, message.metrics
        self.query_one("#compare-title", Static).update(
            f"run {a.id} ({a.model}, judge {a.judge}) vs run {b.id} ({b.model}, judge {b.judge})"
        )
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        fixed_columns(
            table,
            ("k", 5),
            (f"run {a.id}", 10),
            (f"run {b.id}", 10),
            (f"Δ (run {b.id} − run {a.id})", 22),
        )

        def cell(value: float | None, signed: bool = False) -> str:
            return "–" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")

        for k, x, y, d in deltas(ma, mb):
            table.add_row(k, cell(x), cell(y), cell(d, signed=True))
        series = [
            Series.from_metrics(f"run {r.id}", m)
            for r, m in zip(message.runs, message.metrics)
            if m
        ]
        self.query_one("#compare-chart", CorrChart).show(series, title="Corr@k")
