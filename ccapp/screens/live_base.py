"""What every live job screen shares: the job's worker, its events, its end, the paint clock.

Eval, syn, train and the demo each watch a child job. Events only change state (`apply`);
a timer repaints when something changed (`paint`), so a flood of token deltas costs one
repaint per tick, not one per token. How a job ended is decided once, here: the job's own
last word (run_finished) when it said one, else its exit code through `job_status`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Mount
from textual.widget import Widget
from textual.widgets import Header, ProgressBar, RichLog, Static

from ccapp.engines.events import ErrorEvent, Event, Log, ModelLoading, Progress
from ccapp.screens.base import AppScreen
from ccapp.screens.form_problems import name_fields
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


def job_config(job: Job) -> type | None:
    """The config a job's command declares (its errors are worded for its form's fields)."""
    from ccapp.engines.c2eval.config import EvalConfig
    from ccapp.engines.c2syn.config import SynConfig
    from ccapp.engines.demo.config import DemoOptions
    from ccapp.engines.dpo.config import TrainConfig

    configs: dict[str, type] = {
        "eval": EvalConfig,
        "syn": SynConfig,
        "train": TrainConfig,
        "demo": DemoOptions,
    }
    return configs.get(next(iter(job.args), ""))


# The model-loading phases in the order a job goes through them (ccapp.engines.generation):
# a served model has a tokenizer instead of weights; "download" only when the Hub is asked.
LOADING_PHASES = ("resolve", "download", "tokenizer", "weights", "ready")


def duration(seconds: float) -> str:
    """Seconds as a live view shows a wait or an estimate: 45s, 3m12s, 1h05m."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _size(n: int) -> str:
    """Bytes as the download line shows them."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def downloaded(event: ModelLoading) -> str:
    """A download's bytes so far, and of how many when the Hub said."""
    return f" {_size(event.done or 0)}" + (f" of {_size(event.total)}" if event.total else "")


def loading_line(phases: dict[str, ModelLoading]) -> str:
    """Where loading the model stands: each phase seen so far, the one in hand last, with
    the bytes downloaded ("" before the first phase)."""
    if not phases:
        return ""
    parts = []
    seen = [p for p in LOADING_PHASES if p in phases] + [
        p for p in phases if p not in LOADING_PHASES
    ]
    for phase in seen:
        event = phases[phase]
        part = phase
        if phase == "download" and event.done is not None:
            part += downloaded(event)
        elif event.detail and phase in ("resolve", "ready"):
            part += f" {event.detail}"
        parts.append(part)
    ready = "ready" in phases
    head = "model loaded" if ready else "loading the model"
    return f"{head}: {' → '.join(parts)}" + ("" if ready else " …")


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
    # Where the job's progress events put it (units are the job's: continuations, groups,
    # optimizer steps, demo steps).
    done: int = 0
    total: int = 0
    rate: float | None = None
    eta_s: float | None = None
    # The model_loading phases seen so far, the latest event of each.
    loading: dict[str, ModelLoading] = field(default_factory=dict)


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
    NAME: ClassVar[str] = ""  # e.g. "syn": stylesheet syn.tcss, log #syn-log, key ids syn.*
    LOG_ID: ClassVar[str] = ""  # the id of the screen's RichLog, for `write_log`
    # The events the base writes to that log as they come (a screen that shows them its own
    # way leaves this empty).
    LOGGED: ClassVar[tuple[type[Event], ...]] = (Log, ErrorEvent, ModelLoading)
    STOP_TIP: ClassVar[str] = "While running: ask to cancel (the run is paused). After: go back"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every live screen's Esc (stop, or back once over) comes first in its keys; its
        stylesheet and log id follow from its NAME unless it names its own."""
        if cls.NAME:
            if "CSS_PATH" not in cls.__dict__:
                cls.CSS_PATH = f"{cls.NAME}.tcss"
            if "LOG_ID" not in cls.__dict__:
                cls.LOG_ID = f"{cls.NAME}-log"
            open_run = Binding(
                "o", "open_run", "Open run", id=f"{cls.NAME}.open", tooltip="Its page"
            )
            own = cls.__dict__.get("BINDINGS", [])
            cls.BINDINGS = [stop_binding(cls.NAME, cls.STOP_TIP), *own]
            if cls.RESUMABLE and not any(getattr(b, "key", "") == "o" for b in own):
                cls.BINDINGS.append(open_run)
        super().__init_subclass__(**kwargs)

    STATE: ClassVar[type[JobState]] = JobState  # the state a new screen starts from

    def __init__(self, job: Job, title: str, db_path: Path) -> None:
        super().__init__()
        self.job = job
        self.state = cast(StateT, self.STATE())
        self.title_text, self.db_path = title, db_path
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

    def action_open_run(self) -> None:
        """`o`: the job's run on its own page (once the run exists)."""
        run_id = self.state.run_id if self.state.run_id is not None else self.run_named()
        if run_id is None:
            self.notify(
                "The job ended before it made a run: there is nothing to open."
                if self.job_over
                else "No run to open yet: it is made once the job has started."
            )
            return
        from ccapp.screens.run_page import page_of

        self.app.push_screen(page_of(run_id, self.db_path))

    def run_named(self) -> int | None:
        """The run a job works on that it was given (`ccapp judge RUN`, `--resume RUN`), for
        `o` before (or without) its run_started event: a judge job that failed at once."""
        args = list(self.job.args)
        if args[:1] == ["judge"] and len(args) > 1 and args[1].isdigit():
            return int(args[1])
        if "--resume" in args[:-1] and args[args.index("--resume") + 1].isdigit():
            return int(args[args.index("--resume") + 1])
        return None

    def status_block(self, *below: Widget) -> ComposeResult:
        """The header, then the job's status box `#{NAME}-status`: its title, its progress
        bar and what the screen adds `below` them."""
        yield Header()
        with Vertical(id=f"{self.NAME}-status"):
            yield Static(self.title_text, id=f"{self.NAME}-title", markup=False)
            yield ProgressBar(id=f"{self.NAME}-progress", show_eta=False)
            yield Static("", id=f"{self.NAME}-loading", classes="loading", markup=False)
            yield from below

    def loading_line(self) -> str:
        """The model-loading line of the job so far ("" before its first phase): what a
        screen shows instead of an empty wait while the model loads."""
        return loading_line(self.state.loading)

    def write_log(self, event: Log | ErrorEvent | ModelLoading) -> None:
        """A log line, an error or a model-loading step, as a line of the `#{LOG_ID}` log."""
        if isinstance(event, ModelLoading):
            line = f"model: {event.phase} {event.detail or ''}"
            if event.phase == "download" and event.done is not None:
                line += downloaded(event)
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
        event, s = message.event, self.state
        if event.run_id is not None:
            s.run_id = event.run_id
        if isinstance(event, Progress):  # a total of 0 is "not known yet", not a new total
            s.done, s.total, s.rate, s.eta_s = (
                event.done,
                event.total or s.total,
                event.rate,
                event.eta_s,
            )
        if isinstance(event, ModelLoading):
            s.loading[event.phase] = event
        if self.LOG_ID and isinstance(event, self.LOGGED):
            self.write_log(event)  # type: ignore[arg-type]
        self.apply(event)
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
            self.app.push_screen(
                ErrorModal(self.ERROR_TITLE, name_fields(message.error_line, job_config(self.job)))
            )
        self._dirty = True
        self._paint_when_dirty()

    def _paint_when_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self._paint_loading()
        self.paint()

    def _paint_loading(self) -> None:
        """The status box's loading line (screens built with `status_block`): shown from
        the first phase until the job reports progress past its start."""
        from textual.css.query import NoMatches

        try:
            line = self.query_one(f"#{self.NAME}-loading", Static)
        except NoMatches:
            return
        text = self.loading_line()
        line.update(text)
        line.display = bool(text) and (self.state.done == 0 or "ready" not in self.state.loading)

    @property
    def job_over(self) -> bool:
        """The job ended, or reported its end (a child takes a moment to exit): Esc goes back."""
        return self.finished or self.state.status in REPORTED

    def stop_question(self) -> str:
        """What Esc asks before stopping the job (a screen may say what stopping costs)."""
        return self.STOP_QUESTION

    def action_stop_or_back(self) -> None:
        stop_or_back(
            self,
            self.job_over,
            self.stop_question(),
            self.stop_job,
            yes=self.STOP_YES,
            no=self.STOP_NO,
        )
