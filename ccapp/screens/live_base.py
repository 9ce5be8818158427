"""What every live job screen shares: the job's worker, its events, its end, the paint clock.

Eval, syn, train and the demo each watch a child job. Events only change state (`apply`);
a timer repaints when something changed (`paint`), so a flood of token deltas costs one
repaint per tick, not one per token. How a job ended is decided once, here: the job's own
last word (run_finished) when it said one, else its exit code through `job_status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.events import Mount
from textual.widgets import RichLog

from ccapp.engines.events import ErrorEvent, Event, Log, ModelLoading
from ccapp.screens.base import AppScreen
from ccapp.screens.jobs import Job, JobEnded, JobEvent
from ccapp.screens.modals import ErrorModal, stop_or_back

PAINT_EVERY_S = 0.1
REPORTED = ("done", "paused", "failed")  # the statuses a job's run_finished reports
CANCELLED_CODES = (130, -2)  # the CLI's exit on SIGINT, and a child the signal itself ended


def job_status(returncode: int, *, resumable: bool) -> str:
    """A job's status from its exit code alone (when it ended without saying).

    A cancelled eval, syn or train run is paused, since `--resume` carries it on; the demo
    cannot be resumed, so a stopped demo is cancelled.
    """
    if returncode == 0:
        return "done"
    if returncode in CANCELLED_CODES:
        return "paused" if resumable else "cancelled"
    return "failed"


def stop_binding(screen: str, tooltip: str) -> Binding:
    """A live screen's escape key: while the job runs, ask to stop it; after, go back."""
    return Binding(
        "escape", "stop_or_back", "Cancel / back", id=f"{screen}.cancel", tooltip=tooltip
    )


@dataclass
class JobState:
    """The part of a live screen's state the base reads: which run, and where it stands."""

    run_id: int | None = None
    status: str = "starting"


StateT = TypeVar("StateT", bound=JobState)


class LiveJobScreen(AppScreen[None], Generic[StateT]):
    """A screen that runs one job and shows it live; subclasses `apply` events and `paint`.

    Subclasses keep their own `on_mount` for their widgets and must not call this class's
    handlers: Textual runs the handlers of every class in the MRO.
    """

    PAINT_EVERY_S: ClassVar[float] = PAINT_EVERY_S
    RESUMABLE: ClassVar[bool] = True  # a cancelled job leaves a paused run (--resume)
    ERROR_TITLE: ClassVar[str] = "The job stopped with an error"
    STOP_QUESTION: ClassVar[str] = "Cancel this run? It stops at the next step and is paused."
    STOP_YES: ClassVar[str] = "Cancel run"
    STOP_NO: ClassVar[str] = "Keep running"
    LOG_ID: ClassVar[str] = ""  # the id of the screen's RichLog, for `write_log`

    def __init__(self, job: Job, state: StateT) -> None:
        super().__init__()
        self.job = job
        self.state = state
        self.finished = False
        self._dirty = True

    # -- hooks for subclasses --------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Update state from one event; widgets are left to `paint`."""

    def paint(self) -> None:
        """Show the state; called on the clock only when it changed."""

    def ended(self, message: JobEnded) -> None:
        """Say how the job ended (a notification), once `state.status` holds it."""

    def stop_job(self) -> None:
        self.job.cancel()

    def write_log(self, event: Log | ErrorEvent | ModelLoading) -> None:
        """A log line, an error or a model-loading step, as a line of the `#{LOG_ID}` log."""
        if isinstance(event, ModelLoading):
            line = f"model: {event.phase} {event.detail or ''}"
        else:
            line = event.message
        self.query_one(f"#{self.LOG_ID}", RichLog).write(Text(line))

    # -- the machinery ---------------------------------------------------------------------

    @on(Mount)
    def _start_job(self) -> None:
        self.set_interval(self.PAINT_EVERY_S, self._paint_when_dirty)
        self.run_job()

    @work(exclusive=True, group="job", exit_on_error=False)
    async def run_job(self) -> None:
        await self.job.run(self)

    @on(JobEvent)
    def _take_event(self, message: JobEvent) -> None:
        if message.event.run_id is not None:
            self.state.run_id = message.event.run_id
        self.apply(message.event)
        self._dirty = True

    @on(JobEnded)
    def _job_ended(self, message: JobEnded) -> None:
        """The job's own last word (run_finished) wins; the exit code decides only without it.

        A cancel that lands while the job is already exiting kills it by signal after it
        finished its run: that run is done, not failed.
        """
        self.finished = True
        if self.state.status not in REPORTED:
            self.state.status = job_status(message.returncode, resumable=self.RESUMABLE)
        self.ended(message)
        if self.state.status == "failed":
            self.app.push_screen(ErrorModal(self.ERROR_TITLE, message.error_line))
        self._dirty = True
        self._paint_when_dirty()

    def _paint_when_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.paint()

    @property
    def job_over(self) -> bool:
        """The job ended, or reported its end (a child takes a moment to exit): Esc goes back."""
        return self.finished or self.state.status in REPORTED

    def action_stop_or_back(self) -> None:
        stop_or_back(
            self,
            self.job_over,
            self.STOP_QUESTION,
            self.stop_job,
            yes=self.STOP_YES,
            no=self.STOP_NO,
        )
