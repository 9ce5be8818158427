"""Home: where the store is, what devices this machine has, and the runs so far."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ccapp.engines.devices import Device, format_devices
from ccapp.store import Run, Store, runs

RUNS_SHOWN = 200
REFRESH_S = 3.0


class HomeScreen(Screen[None]):
    CSS_PATH = "home.tcss"
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="home.refresh", tooltip="Re-read runs and devices"),
    ]

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
            yield Static(id="store-line")
            yield Static("Devices", classes="section-title")
            yield DataTable(id="devices", cursor_type="none", zebra_stripes=True)
            yield Static("Runs", classes="section-title")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            yield Static("No runs yet in this store.", id="no-runs")
        yield Footer()

    @property
    def db_path(self) -> Path:
        return self.app.db_path  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.query_one("#store-line", Static).update(f"Store  {self.db_path}")
        devices = self.query_one("#devices", DataTable)
        devices.add_columns("device", "name", "memory")
        devices.add_row("…", "probing devices", "")
        self.query_one("#runs", DataTable).add_columns(
            "id", "kind", "status", "model", "judge", "Corr_mean", "created"
        )
        self.probe_devices()
        self.load_runs()
        self.set_interval(REFRESH_S, self.load_runs)

    def action_refresh(self) -> None:
        self.probe_devices()
        self.load_runs()

    @work(exclusive=True, group="devices", exit_on_error=False)
    async def probe_devices(self) -> None:
        try:
            devices = await self.app.probe_devices()  # type: ignore[attr-defined]
        except Exception as exc:  # shown in the table; the app keeps running
            self.post_message(self.DevicesFailed(str(exc)))
        else:
            self.post_message(self.DevicesProbed(devices))

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False)
    def load_runs(self) -> None:
        with Store.open(self.db_path) as store:
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
        table.clear()
        for run in message.runs:
            corr = f"{run.corr_mean:.3f}" if run.corr_mean is not None else "–"
            table.add_row(
                str(run.id),
                run.kind.value,
                run.status.value,
                run.model,
                run.judge or "–",
                corr,
                run.created_at.replace("T", " ").rstrip("Z"),
                key=str(run.id),
            )
        table.display = bool(message.runs)
        self.query_one("#no-runs", Static).display = not message.runs
