"""History: every run in the store, filterable, refreshed while jobs write to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, Static

from ccapp.screens.base import AppScreen
from ccapp.screens.widgets import fixed_columns
from ccapp.store import Run, Store, runs

REFRESH_S = 2.0


def matches(run: Run, text: str) -> bool:
    """Every word of the filter appears in the run's id, kind, status, model, judge or date."""
    haystack = " ".join(
        [
            str(run.id),
            run.kind.value,
            run.status.value,
            run.model,
            run.judge,
            run.data,
            run.created_at,
        ]
    ).lower()
    return all(word in haystack for word in text.lower().split())


class HistoryScreen(AppScreen[None]):
    CSS_PATH = "history.tcss"
    AUTO_FOCUS = "#history-runs"
    BINDINGS = [
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            id="history.filter",
            tooltip="Type to filter the runs",
        ),
        Binding("enter", "open", "Open", id="history.open", tooltip="Open the selected run"),
        Binding("ctrl+r", "refresh", "Refresh", id="history.refresh", tooltip="Re-read the store"),
    ]

    @dataclass
    class Loaded(Message):
        runs: list[Run]

    def __init__(self) -> None:
        super().__init__()
        self.all_runs: list[Run] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="filter: words from model, judge, status, kind, id… (/)",
            id="history-filter",
        )
        yield DataTable(id="history-runs", cursor_type="row", zebra_stripes=True)
        yield Static("No runs yet. Start one with e (evaluate).", id="history-empty")
        yield Footer()

    @property
    def db_path(self) -> Path:
        return self.services.db_path

    def on_mount(self) -> None:
        fixed_columns(
            self.query_one("#history-runs", DataTable),
            ("id", 5),
            ("kind", 6),
            ("model", 28),
            ("judge", 30),
            ("status", 10),
            ("Corr_mean", 9),
            ("created", 19),
        )
        self.query_one("#history-runs", DataTable).focus()
        self.reload()
        self.set_interval(REFRESH_S, self.reload)

    def on_screen_resume(self) -> None:
        self.reload()

    def action_refresh(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.load(self.db_path)

    # A failure (the store is not SQLite, or became unreadable) shows as a modal (AppScreen);
    # the runs already listed stay.
    @work(
        thread=True, exclusive=True, group="history", name="Reading the runs", exit_on_error=False
    )
    def load(self, db_path: Path) -> None:
        with Store.open(db_path) as store:
            found = runs.list_runs(store)
        self.post_message(self.Loaded(found))

    @on(Loaded)
    def loaded(self, message: Loaded) -> None:
        self.all_runs = message.runs
        self.show()

    @on(Input.Changed, "#history-filter")
    def show(self) -> None:
        table = self.query_one("#history-runs", DataTable)
        selected = self.selected_run_id()
        text = self.query_one("#history-filter", Input).value
        shown = [run for run in self.all_runs if matches(run, text)]
        table.clear()
        for run in shown:
            corr = f"{run.corr_mean:.3f}" if run.corr_mean is not None else "–"
            table.add_row(
                str(run.id),
                run.kind.value,
                run.model,
                run.judge or "–",
                run.status.value,
                corr,
                run.created_at.replace("T", " ").rstrip("Z"),
                key=str(run.id),
            )
        if selected is not None and str(selected) in {str(r.id) for r in shown}:
            table.move_cursor(row=table.get_row_index(str(selected)))
        self.query_one("#history-empty", Static).display = not self.all_runs

    def selected_run_id(self) -> int | None:
        table = self.query_one("#history-runs", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return int(str(row_key.value))

    def action_focus_filter(self) -> None:
        self.query_one("#history-filter", Input).focus()

    @on(DataTable.RowSelected, "#history-runs")
    def action_open(self) -> None:
        run_id = self.selected_run_id()
        if run_id is None:
            return
        from ccapp.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(run_id, self.db_path))

    @on(Input.Submitted, "#history-filter")
    def filter_done(self) -> None:
        self.query_one("#history-runs", DataTable).focus()
