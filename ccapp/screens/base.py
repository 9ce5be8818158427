"""What every ccapp screen shares: a typed way to the app's services, and failures that show.

Textual posts `Worker.StateChanged` to the worker's own screen and does not bubble it, so a
worker started with `exit_on_error=False` that raises would otherwise fail silently (a
store that cannot be opened left History empty with no word why). Every screen derives
from `AppScreen`, whose one handler turns a worker's error into an `ErrorModal` with a
one-line message that names the file and the fix. A screen that refreshes on a timer
would raise the same error every few seconds: it is shown once, until that worker
succeeds again. An error raised while another screen is on top (a run opened from
History, or another mode) waits until this screen is shown again, so it never lands on a
screen it does not concern; it is dropped if the worker succeeds meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from ccapp.errors import UserError
from ccapp.screens.modals import ErrorModal

if TYPE_CHECKING:
    from ccapp.engines.devices import Device
    from ccapp.screens.live_base import LiveJobScreen

ResultType = TypeVar("ResultType")


@runtime_checkable
class Services(Protocol):
    """What screens use of the app; ccapp.app.CcappApp provides it (mypy checks that there)."""

    @property
    def db_path(self) -> Path: ...

    def probe_devices(self) -> Awaitable[list[Device]]: ...

    def open_run(self, run_id: int) -> None: ...

    def start_demo(self) -> None: ...

    def launch(self, live: LiveJobScreen[Any]) -> None: ...


def keys(
    screen: str, *rows: tuple[str, ...], hidden: tuple[str, ...] = ()
) -> list[Binding | tuple[str, str] | tuple[str, str, str]]:
    """A screen's key table, one `(key, action, footer text[, tooltip])` row a binding: each
    binding's id (what a keymap names) is `screen.footer-text`, e.g. `run.re-judge`; the keys
    in `hidden` work but leave the footer's room to the others (the page says them)."""
    return [
        Binding(
            key,
            action,
            text,
            show=key not in hidden,
            tooltip=tip[0] if tip else "",
            id=f"{screen}.{slug(text)}",
        )
        for key, action, text, *tip in rows
    ]


def slug(text: str) -> str:
    return "-".join(text.lower().split())


def services_of(app: App[Any]) -> Services:
    """The app as `Services`, for screens and for the command palette's provider."""
    if not isinstance(app, Services):
        raise TypeError(
            f"{type(app).__name__} does not provide what ccapp's screens use "
            "(db_path, probe_devices, open_run, start_demo); run them under ccapp.app.CcappApp"
        )
    return app


def one_line(error: BaseException) -> str:
    """A user-facing line: the error's own message, else its type's name."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def failure_line(error: BaseException, db_path: Path) -> str:
    """One line for a worker's error that names the file and says what to do.

    A `UserError` already does (the store's own errors name the file and the fix); SQLite
    and OS errors raised after the store opened do not, so the line adds them.
    """
    if isinstance(error, UserError):
        return " ".join(error.message.split())
    if isinstance(error, sqlite3.Error):
        return (
            f"{db_path}: cannot read the store ({one_line(error)}); nothing was changed. "
            "Fix: check that the file is a readable ccapp store, or restart ccapp with "
            "another --db"
        )
    if isinstance(error, OSError):
        where = error.filename or db_path
        return (
            f"{where}: {error.strerror or one_line(error)}. "
            "Fix: check that the file exists and is readable and writable"
        )
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class AppScreen(Screen[ResultType]):
    """A ccapp screen: `services` instead of untyped `self.app.<x>`, worker errors as a modal.

    Name each worker for what it does (`@work(name="Reading the runs")`): the modal's title
    is that name followed by "failed".
    """

    def __init__(
        self, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name, id, classes)
        self._reported: dict[str, str] = {}  # worker name -> the failure shown for it
        self._unshown: dict[str, tuple[str, str]] = {}  # worker name -> (title, message)

    @property
    def services(self) -> Services:
        return services_of(self.app)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state is WorkerState.SUCCESS:  # the failure is over, and old news now
            self._reported.pop(worker.name, None)
            self._unshown.pop(worker.name, None)
            return
        if event.state is not WorkerState.ERROR or worker.error is None:
            return
        message = failure_line(worker.error, self.services.db_path)
        if self._reported.get(worker.name) == message:
            return  # a refresh timer met the same failure again: shown once is enough
        self._reported[worker.name] = message
        title = f"{worker.name or 'A background task'} failed"
        if self.is_active:
            self.app.push_screen(ErrorModal(title, message))
        else:
            self._unshown[worker.name] = (title, message)

    def on_screen_resume(self) -> None:
        unshown, self._unshown = self._unshown, {}
        for title, message in unshown.values():
            self.app.push_screen(ErrorModal(title, message))
