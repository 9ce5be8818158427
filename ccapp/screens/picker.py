"""A question answered by picking a row of a table (the judge to re-judge with, the run to
compare with), written once: the rows are read from the store in a thread, so the app never
waits on it; enter picks the highlighted row, esc cancels, and what could not be read (or
why there is nothing to pick) is said where the table would be."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ccapp.errors import UserError
from ccapp.screens.base import failure_line
from ccapp.screens.widgets import fixed_columns
from ccapp.store import Store


@dataclass
class Choices:
    """The rows a picker offers, `(key, cells)` each, and what it says when there are none."""

    rows: Sequence[tuple[str, Sequence[str]]] = field(default_factory=list)
    none: str = ""


@dataclass(frozen=True)
class Picking:
    """What one picker asks: its name (`#{name}-choices` is its table, `#{name}-note` the
    line under it), the question, the columns (label, width), the rows read from the store,
    and why a picked key is refused (None: it is taken)."""

    name: str
    question: str
    columns: tuple[tuple[str, int], ...]
    read: Callable[[Store], Choices]
    refuse: Callable[[str], str | None] = lambda key: None


class TablePicker(ModalScreen[str | None]):
    """Dismissed with the picked row's key, or None on esc."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]

    def __init__(self, picking: Picking, db_path: Path) -> None:
        super().__init__()
        self.picking, self.db_path = picking, db_path

    def compose(self) -> ComposeResult:
        name = self.picking.name
        with Vertical(classes="dialog picker"):
            yield Static(self.picking.question, classes="question", markup=False)
            yield DataTable(id=f"{name}-choices", cursor_type="row", zebra_stripes=True)
            yield Static("Reading the store…", id=f"{name}-note", classes="note", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        fixed_columns(table, *self.picking.columns)
        table.focus()  # keys typed while the rows load go to the table, never behind it
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load(self) -> None:
        try:
            with Store.open(self.db_path) as store:
                choices = self.picking.read(store)
        except (UserError, sqlite3.Error, OSError) as exc:
            choices = Choices(none=failure_line(exc, self.db_path))
        self.app.call_from_thread(self.fill, choices)

    def fill(self, choices: Choices) -> None:
        table = self.query_one(DataTable)
        for key, cells in choices.rows:
            table.add_row(*cells, key=key)
        table.display = bool(choices.rows)
        self.say("" if choices.rows else choices.none)

    def say(self, text: str) -> None:
        self.query_one(f"#{self.picking.name}-note", Static).update(text)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        refused = self.picking.refuse(key)
        if refused is not None:
            self.say(refused)
            return
        self.dismiss(key)

    def action_cancel(self) -> None:
        self.dismiss(None)
