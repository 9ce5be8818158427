"""What every run's page shares (eval, syn, train): its summary lines, resume and delete (as
run_actions does them, on a page and on a row of History alike), and which page a run kind
gets.

Each kind has its own page, since what a run produced differs: an eval run's Corr@k and
continuations (run_detail.py), a syn run's filters, groups and pairs (syn_run.py), a train
run's curves, checkpoints and model (train_run.py). A page is reread from the store each
time it is shown again, so it never shows a state the run has left (resumed, finished).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Static

from ccapp.engines.run_summary import settings_line
from ccapp.screens import run_actions
from ccapp.screens.base import AppScreen, keys
from ccapp.store import Run, RunKind, RunStatus, Store, runs


def summary_text(run: Run, lineage: list[Run]) -> Text:
    """The head of every run's page: what, which model and data, when, its lineage (eval →
    syn → train → eval), its shown settings and its error."""
    lines = Text()
    status = run.status_text
    if run.status is RunStatus.RUNNING and not run.interrupted:
        status += f" in process {run.pid} (this page follows it)"
    lines.append(f"run {run.id} · {run.kind.value} · {status}\n", style="bold")
    lines.append(f"model {run.model} · data {run.data} · judge {run.judge or '–'}\n")
    lines.append(
        f"created {run.created_at} · finished {run.finished_at or '–'}"
        f" · parent {run.parent_id or '–'}\n"
    )
    if len(lineage) > 1:
        lines.append("lineage  ")
        for index, link in enumerate(lineage):
            if index:
                lines.append(" → ")
            label = f"{link.kind.value} {link.id}"
            if link.corr_mean is not None:
                label += f" (Corr_mean {link.corr_mean:.3f})"
            lines.append(label, style="bold" if link.id == run.id else "")
        lines.append("\n")
    lines.append(settings_line(run), style="dim")
    if run.error:
        lines.append(f"\n{run.error}", style="bold red")
        if run.kind in run_actions.RESUMABLE_KINDS and run.status is not RunStatus.DONE:
            lines.append(" (r resumes it here)", style="bold")  # the error names the CLI's way
    return lines


def run_page(run_id: int, db_path: Path, kind: RunKind) -> Screen[Any]:
    """The page of a run of this kind."""
    if kind is RunKind.SYN:
        from ccapp.screens.syn_run import SynRunScreen

        return SynRunScreen(run_id, db_path)
    if kind is RunKind.TRAIN:
        from ccapp.screens.train_run import TrainRunScreen

        return TrainRunScreen(run_id, db_path)
    from ccapp.screens.run_detail import RunDetailScreen

    return RunDetailScreen(run_id, db_path)


def page_of(run_id: int, db_path: Path) -> Screen[Any]:
    """The page of a stored run, by its kind (an unknown id: the eval page says so)."""
    from ccapp.store import Store, runs

    try:
        with Store.open(db_path) as store:
            kind = runs.get_run(store, run_id).kind
    except Exception:  # the page reads the store again and shows what went wrong
        kind = RunKind.EVAL
    return run_page(run_id, db_path, kind)


FOLLOW_S = 3.0  # how often a page rereads a run that another process is running

# The keys every run's page has (rows of base.keys), and those of a page with a paged list.
BACK = ("escape", "app.pop_screen", "Back")
RESUME = ("r", "resume", "Resume", "Finish a paused or failed run")
DELETE = ("d", "delete", "Delete", "Delete the run and all it produced")
EXPORT = ("x", "export", "Export", "Write its report, page or samples (a syn run: its pairs)")
PAGES = (
    ("right_square_bracket", "page(1)", "Next page"),
    ("left_square_bracket", "page(-1)", "Prev page"),
)


class RunPage(AppScreen[None]):
    """A run's page: it reads its run when mounted and when shown again, resumes and deletes it.

    Subclasses say what to read with the run (`overview`, in a worker thread with its own
    store connection) and show the message it returns; they keep `self.run` current.
    """

    KIND: ClassVar[RunKind]
    SUMMARY_ID: ClassVar[str]  # the Static the summary lines go in
    OWN_KEYS: ClassVar[tuple[tuple[str, ...], ...]] = ()  # rows of base.keys
    PAGED: ClassVar[bool] = False  # it has a paged list: [ and ] turn its pages

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A page's stylesheet and summary id follow from its kind (`syn_run.tcss`,
        `#syn-run-summary`) unless it names its own."""
        if "KIND" in cls.__dict__:
            name = cls.KIND.value
            if "CSS_PATH" not in cls.__dict__:
                cls.CSS_PATH = f"{name}_run.tcss"
            if "SUMMARY_ID" not in cls.__dict__:
                cls.SUMMARY_ID = f"{name}-run-summary"
            # Back first, then the page's own keys, export, resume, delete, and the page keys.
            pages = PAGES if cls.PAGED else ()
            prefix = "run" if cls.KIND is RunKind.EVAL else f"{name}-run"
            hidden = tuple(key for key, *_ in PAGES)  # the list's page line says [ and ]
            cls.BINDINGS = keys(
                prefix, BACK, *cls.OWN_KEYS, EXPORT, RESUME, DELETE, *pages, hidden=hidden
            )
        super().__init_subclass__(**kwargs)

    def __init__(self, run_id: int, db_path: Path):
        super().__init__()
        self.run_id = run_id
        self.db_path = db_path
        self.run: Run | None = None
        self._stale = False  # another screen was shown over it since it was read
        self._follow: Timer | None = None  # rereads a run that runs elsewhere

    def show_run(self, run: Run, lineage: list[Run]) -> None:
        """Take the run as read and show its summary lines; while another process runs it
        (a job left running, a CLI run), the page follows the store."""
        self.run = run
        self.query_one(f"#{self.SUMMARY_ID}", Static).update(summary_text(run, lineage))
        following = run.status is RunStatus.RUNNING and not run.interrupted
        if following and self._follow is None:
            self._follow = self.set_interval(FOLLOW_S, self._follow_tick)
        elif not following and self._follow is not None:
            self._follow.stop()
            self._follow = None

    def _follow_tick(self) -> None:
        if self.is_active:  # under another screen it is read again when shown
            self.reload()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Read the run again and show it."""
        self.load_overview(self.db_path, self.run_id)

    def overview(self, store: Store, run: Run) -> Message:
        """What the page shows of the run, read from the store (in the worker thread); each
        kind's page says it (run_detail, syn_run, train_run)."""
        raise NotImplementedError(f"{type(self).__name__} says what it reads of its run")

    @work(
        thread=True, exclusive=True, group="overview", name="Reading the run", exit_on_error=False
    )
    def load_overview(self, db_path: Path, run_id: int) -> None:
        with Store.open(db_path) as store:
            message = self.overview(store, runs.get_run(store, run_id))
        self.post_message(message)

    def on_screen_suspend(self) -> None:
        """Left for another screen (a live view, another page): read the run again when
        back. A dialog over the page changes nothing it shows, so the page stays as it is."""
        self._stale = not isinstance(self.app.screen, ModalScreen)

    def on_screen_resume(self) -> None:
        """Shown again after another screen: read the store again, so a run resumed or
        finished meanwhile is shown as it is now."""
        if self._stale:
            self._stale = False
            self.reload()

    def action_resume(self) -> None:
        if self.run is not None:
            run_actions.resume(self, self.run, self.db_path)

    def action_export(self) -> None:
        if self.run is not None:
            run_actions.export(self, self.run, self.db_path)

    def action_delete(self) -> None:
        if self.run is not None:
            run_actions.delete(self, self.run, self.db_path, self._deleted)

    def _deleted(self) -> None:
        self.app.pop_screen()
