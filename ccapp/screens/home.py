"""Home: where the store is, what devices this machine has, and the runs so far."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Header, Static

from ccapp.engines.devices import Device, format_devices
from ccapp.screens.base import AppScreen, keys
from ccapp.screens.widgets import fixed_columns, footer, tail
from ccapp.store import Run, Store, runs

RUNS_SHOWN = 200
REFRESH_S = 3.0
MODEL_WIDTH = 28


class HomeScreen(AppScreen[None]):
    CSS_PATH = "home.tcss"
    AUTO_FOCUS = "#runs"  # the runs are what one comes for: Down, Enter opens one
    BINDINGS = keys(
        "home",
        ("ctrl+r", "refresh", "Refresh", "Re-read runs and devices"),
        ("enter", "open_run", "Open run", "Open the selected run"),
        (
            "d",
            "demo",
            "Demo",
            "The whole loop on a toy model: eval → syn → DPO → eval (minutes, CPU)",
        ),
    )

    @dataclass
    class DevicesProbed(Message):
        devices: list[Device]

    @dataclass
    class DevicesFailed(Message):
        reason: str

    @dataclass
    class RunsLoaded(Message):
        runs: list[Run]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home-body"):
            yield Static(id="store-line", markup=False)
            yield Static("Devices", classes="section-title")
            yield DataTable(id="devices", cursor_type="none", zebra_stripes=True)
            yield Static("Runs", classes="section-title")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Static(
                "No runs yet in this store. Press e to start an evaluation, or d for the demo.",
                id="no-runs",
            )
        yield from footer()

    @property
    def db_path(self) -> Path:
        return self.services.db_path

    def on_mount(self) -> None:
        self.query_one("#store-line", Static).update(f"Store  {self.db_path}")
        devices = self.query_one("#devices", DataTable)
        fixed_columns(devices, ("device", 8), ("name", 40), ("memory", 22))  # 80 columns
        devices.add_row("…", "probing devices", "")
        fixed_columns(
            self.query_one("#runs", DataTable),
            ("id", 5),
            ("kind", 6),
            ("status", 10),
            ("model", MODEL_WIDTH),
            ("judge", 30),
            ("Corr_mean", 9),
            ("created", 19),
        )
        self.probe_devices()
        self.reload_runs()
        self.set_interval(REFRESH_S, self.reload_runs)

    def on_screen_resume(self) -> None:
        """Back on Home (a mode key, esc from a run): the store as it is now."""
        if self.is_mounted:
            self.reload_runs()

    def action_refresh(self) -> None:
        self.probe_devices()
        self.reload_runs()

    def action_demo(self) -> None:
        self.services.start_demo()

    @on(DataTable.RowSelected, "#runs")
    def action_open_run(self) -> None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self.services.open_run(int(str(row_key.value)))

    @work(exclusive=True, group="devices", exit_on_error=False)
    async def probe_devices(self) -> None:
        try:
            devices = await self.services.probe_devices()
        except Exception as exc:  # shown in the table; the app keeps running
            self.post_message(self.DevicesFailed(str(exc)))
        else:
            self.post_message(self.DevicesProbed(devices))

    def reload_runs(self) -> None:
        self.load_runs(self.db_path)

    # A failure (the store is not SQLite, or became unreadable) shows as a modal (AppScreen).
    @work(thread=True, exclusive=True, group="runs", name="Reading the runs", exit_on_error=False)
    def load_runs(self, db_path: Path) -> None:
        with Store.open(db_path) as store:
            found = runs.list_runs(store, limit=RUNS_SHOWN)
        self.post_message(self.RunsLoaded(found))

    @on(DevicesProbed)
    def show_devices(self, message: DevicesProbed) -> None:
        table = self.query_one("#devices", DataTable)
        table.clear()
        for row in format_devices(message.devices):
            table.add_row(*row)

    @on(DevicesFailed)
    def show_device_error(self, message: DevicesFailed) -> None:
        table = self.query_one("#devices", DataTable)
        table.clear()
        table.add_row("?", message.reason, "")

    @on(RunsLoaded)
    def show_runs(self, message: RunsLoaded) -> None:
        table = self.query_one("#runs", DataTable)
        highlighted = None  # a refresh keeps the highlighted run (Enter opens what is lit)
        if table.row_count:
            highlighted = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for run in message.runs:
            created = run.created_at.replace("T", " ").rstrip("Z")
            cells = run.listed()
            cells[3] = tail(run.model, MODEL_WIDTH)
            table.add_row(*cells, created, key=str(run.id))
        if highlighted is not None and highlighted in {str(r.id) for r in message.runs}:
            table.move_cursor(row=table.get_row_index(highlighted))
        table.display = bool(message.runs)
        self.query_one("#no-runs", Static).display = not message.runs
        if message.runs and self.focused is None:
            table.focus()  # it was hidden (no runs) when the screen chose its focus
