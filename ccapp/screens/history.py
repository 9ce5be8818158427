"""History: every run in the store, filterable, refreshed while jobs write to it and each time it
is shown; a run's page keys (r, j, c, x, d) work on the highlighted row too (run_actions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.events import Key
from textual.message import Message
from textual.widgets import DataTable, Header, Input, Static

from ccapp.screens import run_actions
from ccapp.screens.base import AppScreen, keys
from ccapp.screens.rejudge import rejudge
from ccapp.screens.widgets import fixed_columns, footer, many, tail
from ccapp.store import Run, Store, runs

REFRESH_S = 2.0
MODEL_WIDTH = 20


def matches(run: Run, text: str) -> bool:
    """Every word of the filter appears in the run's id, kind, status, model, judge or date."""
    haystack = " ".join(
        [
            str(run.id),
            run.kind.value,
            runs.status_text(run),
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
    BINDINGS = keys(
        "history",
        ("slash", "focus_filter", "Filter", "Type to filter the runs"),
        ("enter", "open", "Open", "Open the selected run"),
        ("r", "on_row('resume')", "Resume", "Finish the highlighted paused or failed run"),
        ("j", "on_row('rejudge')", "Re-judge", "Judge the highlighted run's continuations again"),
        ("c", "on_row('compare')", "Compare", "The highlighted run beside another"),
        (
            "x",
            "on_row('export')",
            "Export",
            "Write the highlighted run's report, page, samples or pairs",
        ),
        ("d", "on_row('delete')", "Delete", "Delete the highlighted run and all it produced"),
        ("ctrl+r", "refresh", "Refresh", "Re-read the store"),
    )

    @dataclass
    class Loaded(Message):
        runs: list[Run]

    def __init__(self) -> None:
        super().__init__()
        self.all_runs: list[Run] = []
        # Coming back to the list after a run was started elsewhere: that new run is what
        # the user came for, so it is highlighted (a refresh while here keeps the cursor).
        self._newest_on_leaving: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="filter: words from model, judge, status, kind, id… (/)",
            id="history-filter",
        )
        yield DataTable(id="history-runs", cursor_type="row", zebra_stripes=True)
        yield Static("No runs yet. Start one with e (evaluate).", id="history-empty", markup=False)
        yield from footer()

    @property
    def db_path(self) -> Path:
        return self.services.db_path

    def on_mount(self) -> None:
        fixed_columns(
            self.query_one("#history-runs", DataTable),
            ("id", 5),  # the columns of every list of runs (Run.listed), then the date
            ("kind", 6),
            ("status", 11),
            ("model", MODEL_WIDTH),
            ("judge", 12),
            ("Corr_mean", 9),
            ("created", 19),
        )
        self.query_one("#history-runs", DataTable).focus()
        self.reload()
        self.set_interval(REFRESH_S, self.reload)

    def on_screen_resume(self) -> None:
        self.reload()

    def on_screen_suspend(self) -> None:
        self._newest_on_leaving = max((run.id for run in self.all_runs), default=0)

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
        left_at, self._newest_on_leaving = self._newest_on_leaving, None
        newest = max((run.id for run in self.all_runs), default=0)
        self.show(select=newest if left_at is not None and newest > left_at else None)

    @on(Input.Changed, "#history-filter")
    def filtered(self) -> None:
        self.show()

    def show(self, select: int | None = None) -> None:
        """The runs the filter matches, the cursor on `select` (else where it was)."""
        table = self.query_one("#history-runs", DataTable)
        selected = select if select is not None else self.selected_run_id()
        text = self.query_one("#history-filter", Input).value
        shown = [run for run in self.all_runs if matches(run, text)]
        table.clear()
        for run in shown:
            cells = run.listed()
            cells[3] = tail(run.model, MODEL_WIDTH)
            created = run.created_at.replace("T", " ").rstrip("Z")
            table.add_row(*cells, created, key=str(run.id))
        if selected is not None and str(selected) in {str(r.id) for r in shown}:
            table.move_cursor(row=table.get_row_index(str(selected)))
        empty = self.query_one("#history-empty", Static)
        if not self.all_runs:
            empty.update("No runs yet. Start one with e (evaluate).")
        elif not shown:
            empty.update(
                f"No run matches '{text.strip()}' ({many(len(self.all_runs), 'run')} in the "
                "store): "
                "every word must appear in its id, kind, status, model, judge or date "
                "(clear the filter to see them all)."
            )
        empty.display = not shown

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
        from ccapp.screens.run_page import page_of

        self.app.push_screen(page_of(run_id, self.db_path))

    @on(Input.Submitted, "#history-filter")
    def filter_done(self) -> None:
        self.query_one("#history-runs", DataTable).focus()

    def on_key(self, event: Key) -> None:
        """Down from the filter moves into the list (what the eye expects below a field)."""
        if event.key == "down" and self.focused is self.query_one("#history-filter", Input):
            event.stop()
            self.filter_done()

    def selected_run(self) -> Run | None:
        run_id = self.selected_run_id()
        return next((run for run in self.all_runs if run.id == run_id), None)

    def action_on_row(self, what: str) -> None:
        """A run page's key on the highlighted row: the same action, the same confirmation."""
        run = self.selected_run()
        if run is None:
            self.notify("No run is highlighted.")
            return
        if what == "delete":
            run_actions.delete(self, run, self.db_path, self.reload)
            return
        act = {
            "resume": run_actions.resume,
            "rejudge": rejudge,
            "compare": run_actions.compare,
            "export": run_actions.export,
        }[what]
        act(self, run, self.db_path)
