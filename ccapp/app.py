"""The terminal app: wires modes, bindings and the theme; each screen lives in ccapp/screens.

The app never imports torch: jobs and device probes run as child processes of the CLI, and
the store is read directly (SQLite is the shared truth).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from ccapp.engines.devices import Device
from ccapp.screens.devices_probe import probe_in_child
from ccapp.screens.home import HomeScreen
from ccapp.theme import CCAPP_THEME

DeviceProbe = Callable[[], Awaitable[list[Device]]]


class CcappApp(App[None]):
    TITLE = "ccapp"
    SUB_TITLE = "course-correction, measured"
    MODES = {"home": HomeScreen}
    DEFAULT_MODE = "home"
    BINDINGS = [
        Binding(
            "q", "quit", "Quit", id="app.quit", tooltip="Leave ccapp (running jobs keep running)"
        ),
    ]

    def __init__(self, db_path: Path, *, probe_devices: DeviceProbe = probe_in_child):
        super().__init__()
        self.db_path = db_path
        self.probe_devices = probe_devices

    def on_mount(self) -> None:
        self.register_theme(CCAPP_THEME)
        self.theme = "ccapp"


def run_app(db: str | None = None) -> int:
    """Open (and migrate) the store first, so store errors are reported like any CLI error."""
    from ccapp.config import resolve_db
    from ccapp.store import Store

    path = resolve_db(db)
    Store.open(path).close()
    CcappApp(path).run()
    return 0
