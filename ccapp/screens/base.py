"""What every ccapp screen shares: a typed way to the app's services, and failures that show.

Textual posts `Worker.StateChanged` to the worker's own screen and does not bubble it, so a
worker started with `exit_on_error=False` that raises would otherwise fail silently (a
store that cannot be opened left History empty with no word why). Every screen derives
from `AppScreen`, whose one handler turns a worker's error into an `ErrorModal` with its
one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from textual.screen import Screen
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from ccapp.engines.devices import Device

ResultType = TypeVar("ResultType")


class Services(Protocol):
    """What screens use of the app (ccapp.app.CcappApp provides it)."""

    db_path: Path

    async def probe_devices(self) -> list[Device]: ...

    def open_run(self, run_id: int) -> None: ...

    def start_demo(self) -> None: ...


def one_line(error: BaseException) -> str:
    """A user-facing line: the error's own message, else its type's name."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


class AppScreen(Screen[ResultType]):
    @property
    def services(self) -> Services:
        app: Any = self.app
        return app  # CcappApp satisfies Services; a test app may supply its own

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR or event.worker.error is None:
            return
        from ccapp.screens.modals import ErrorModal

        name = event.worker.name or event.worker.group or "background task"
        self.app.push_screen(ErrorModal(f"{name} failed", one_line(event.worker.error)))
