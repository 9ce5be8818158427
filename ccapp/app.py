"""The terminal app: wires modes, bindings, commands and the theme; screens live in ccapp/screens.

The app never imports torch: jobs and device probes run as child processes of the CLI, and
the store is read directly (SQLite is the shared truth).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding

from ccapp.engines.devices import Device
from ccapp.screens.base import Services
from ccapp.screens.commands import CcappCommands
from ccapp.screens.devices_probe import probe_in_child
from ccapp.screens.eval_form import EvalFormScreen
from ccapp.screens.history import HistoryScreen
from ccapp.screens.home import HomeScreen
from ccapp.screens.syn import SynFormScreen
from ccapp.screens.train import TrainFormScreen
from ccapp.theme import CCAPP_THEME

DeviceProbe = Callable[[], Awaitable[list[Device]]]


class CcappApp(App[None]):
    TITLE = "ccapp"
    SUB_TITLE = "course-correction, measured"
    MODES = {
        "home": HomeScreen,
        "eval": EvalFormScreen,
        "syn": SynFormScreen,
        "train": TrainFormScreen,
        "history": HistoryScreen,
    }
    DEFAULT_MODE = "home"
    COMMANDS = App.COMMANDS | {CcappCommands}
    # F-keys switch modes from anywhere, even while typing in a form; the letters do the
    # same where no text field has the focus.
    BINDINGS = [
        Binding(
            "f1,h",
            "switch_mode('home')",
            "Home",
            key_display="F1/h",
            id="app.home",
            tooltip="Store, devices and runs",
        ),
        Binding(
            "f2,e",
            "switch_mode('eval')",
            "Evaluate",
            key_display="F2/e",
            id="app.eval",
            tooltip="A new C2-Eval run",
        ),
        Binding(
            "f3,r",
            "switch_mode('history')",
            "Runs",
            key_display="F3/r",
            id="app.history",
            tooltip="Browse, compare, export",
        ),
        Binding(
            "f4,s",
            "switch_mode('syn')",
            "Synthesize",
            key_display="F4/s",
            id="app.syn",
            tooltip="C2-Syn preference pairs",
        ),
        Binding(
            "f5,t",
            "switch_mode('train')",
            "Train",
            key_display="F5/t",
            id="app.train",
            tooltip="DPO on synthesized pairs",
        ),
        Binding(
            "q", "quit", "Quit", id="app.quit", tooltip="Leave ccapp (ctrl+q works everywhere)"
        ),
    ]

    def __init__(self, db_path: Path, *, probe_devices: DeviceProbe = probe_in_child):
        super().__init__()
        self.db_path = db_path
        self.probe_devices = probe_devices

    def on_mount(self) -> None:
        self.register_theme(CCAPP_THEME)
        self.theme = "ccapp"

    def open_run(self, run_id: int) -> None:
        from ccapp.screens.run_detail import RunDetailScreen

        self.push_screen(RunDetailScreen(run_id, self.db_path))

    def start_demo(self) -> None:
        """Ask first: the demo trains a model for minutes and adds five runs to the store."""
        from ccapp.screens.demo import DemoScreen
        from ccapp.screens.jobs import ChildJob
        from ccapp.screens.modals import ConfirmModal

        def answer(start: bool | None) -> None:
            if start:
                self.push_screen(
                    DemoScreen(ChildJob(["demo", "--db", str(self.db_path)]), self.db_path)
                )

        self.push_screen(
            ConfirmModal(
                "Run the demo? It builds a toy model and runs eval → syn → DPO → eval on this "
                "machine's CPU (under 10 minutes); its runs land in History.",
                yes="Start",
                no="Not now",
            ),
            answer,
        )


if TYPE_CHECKING:  # mypy checks here that the app gives screens all they use (screens/base.py)
    _PROVIDES_SERVICES: type[Services] = CcappApp


def run_app(db: str | None = None) -> int:
    """Open (and migrate) the store first, so store errors are reported like any CLI error."""
    from ccapp.config import resolve_db
    from ccapp.store import Store

    path = resolve_db(db)
    Store.open(path).close()
    CcappApp(path).run()
    return 0
