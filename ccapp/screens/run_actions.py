"""What can be done to a run — resume, compare, export, delete, save its figure (re-judge:
rejudge.py) — written once, so the
same keys do the same thing, with the same confirmations, on a run's page and on a
highlighted row of a list (History).

Each function takes the screen it acts from (dialogs and notifications go there, and its
workers' failures show as its error modal: ccapp.screens.base.AppScreen) and the run as read.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from textual.screen import Screen

from ccapp.errors import UserError
from ccapp.screens.base import failure_line, services_of
from ccapp.screens.modals import ConfirmModal, ErrorModal, PromptModal
from ccapp.store import Run, RunKind, RunStatus, Store, runs

RESUMABLE_KINDS = (RunKind.EVAL, RunKind.SYN, RunKind.TRAIN)


def start_job(screen: Screen[Any], args: list[str], title: str, db_path: Path) -> None:
    """`ccapp ARGS` as a child on the live view of its kind (eval and judge: the eval view)."""
    from ccapp.screens.jobs import ChildJob
    from ccapp.screens.live_base import LiveJobScreen
    from ccapp.screens.live_run import LiveRunScreen
    from ccapp.screens.syn import SynLiveScreen
    from ccapp.screens.train import TrainLiveScreen

    views: dict[str, type[LiveJobScreen[Any]]] = {"syn": SynLiveScreen, "train": TrainLiveScreen}
    live = views.get(args[0], LiveRunScreen)
    services_of(screen.app).launch(live(ChildJob([*args, "--db", str(db_path)]), title, db_path))


def resume(screen: Screen[Any], run: Run, db_path: Path) -> None:
    """Finish a paused, failed or interrupted run with its own command's `--resume`."""
    if run.kind not in RESUMABLE_KINDS or not run.status.resumable:
        screen.notify(
            f"run {run.id} is {runs.status_text(run)}: only a paused, failed or interrupted "
            "eval, syn or train run can be resumed."
        )
        return
    if run.status is RunStatus.RUNNING:
        screen.notify(f"run {run.id} is running in process {run.pid}; it cannot be resumed now.")
        return
    start_job(screen, [run.kind.value, "--resume", str(run.id)], f"resume run {run.id}", db_path)


def compare(screen: Screen[Any], run: Run, db_path: Path) -> None:
    """Pick a comparable run (another eval run), then show the two side by side: this run
    first, and Δ = this run − the picked one."""
    from ccapp.screens.compare import CompareScreen, compare_picking
    from ccapp.screens.picker import TablePicker

    if run.kind is not RunKind.EVAL:
        screen.notify(f"run {run.id} is {run.kind.a_run}: only eval runs are compared.")
        return

    def chosen(other: str | None) -> None:
        if other is not None:
            screen.app.push_screen(CompareScreen(int(other), run.id, db_path))

    screen.app.push_screen(TablePicker(compare_picking(run), db_path), chosen)


def export(screen: Screen[Any], run: Run, db_path: Path) -> None:
    """Ask where, then write what the file name's suffix asks for (the JSON report, the HTML
    page, the samples table; a syn run's pairs folder), asking before replacing anything."""
    from ccapp.engines.exports import default_path

    default = default_path(run.id, "pairs" if run.kind is RunKind.SYN else "report")

    def chosen(value: str | None) -> None:
        if value:
            _export_worker(screen, run, db_path, Path(value), force=False)

    screen.app.push_screen(
        PromptModal(
            f"Export run {run.id} to ({export_choices(run.kind)}):",
            str(default),
            explain=partial(explain_export, run.kind),
        ),
        chosen,
    )


def export_choices(kind: RunKind) -> str:
    """What a run of this kind exports to, by the name's suffix (the dialog's words)."""
    if kind is RunKind.SYN:
        return "a folder for its pairs, or .json for its report"
    if kind is RunKind.EVAL:
        return ".json report, .html page, or .parquet, .jsonl or .csv samples"
    return ".json report"


def explain_export(kind: RunKind, value: str) -> tuple[str, bool]:
    """What exporting to `value` writes, by its suffix; or why it cannot, in the dialog's
    words (the command line's fix names its flags, which the dialog has none of)."""
    from ccapp.engines.exports import export_format

    try:
        fmt = export_format(Path(value), None, kind)
    except UserError as exc:
        return f"{exc.problem}: name a {export_choices(kind)}", False
    return f"writes {EXPORT_WHAT[fmt]}", True


EXPORT_WHAT = {
    "report": "the JSON report (everything, versioned)",
    "paper": "the paper's list",
    "html": "the HTML report (one page, opens offline)",
    "samples": "the samples table (one row per continuation × verdict)",
    "pairs": "the preference pairs as a datasets folder, for DPO",
}


def _export_worker(
    screen: Screen[Any], run: Run, db_path: Path, path: Path, *, force: bool
) -> None:
    screen.run_worker(
        partial(_write_export, screen, run, db_path, path, force),
        thread=True,
        exclusive=True,
        group="export",
        name="Export",
        exit_on_error=False,
    )


def _write_export(screen: Screen[Any], run: Run, db_path: Path, path: Path, force: bool) -> None:
    from ccapp.engines.exports import WHAT, export_format, occupied, write_export

    fmt = export_format(path, None, run.kind)
    if occupied(path) and not force:
        screen.app.call_from_thread(_ask_overwrite, screen, run, db_path, path)
        return
    # Building a report reads every verdict and bootstraps each interval: a second or more
    # on a big run, so the user is told it has started (and the toast goes when it is done).
    screen.app.call_from_thread(
        screen.notify, f"writing run {run.id}'s {WHAT[fmt]} to {path}…", title="Export", timeout=30
    )
    try:
        with Store.open(db_path) as store:  # a failure reaches the screen's error modal
            done = write_export(store, run.id, fmt, path, force=force)
    finally:  # after the "writing…" toast's own message has been handled, not before it
        screen.app.call_from_thread(screen.app.call_later, _clear_export_toasts, screen)
    said = [f"{WHAT[fmt]} written to {done.path}", done.summary, done.note]
    screen.app.call_from_thread(
        screen.notify, " · ".join(part for part in said if part), title="Exported", markup=False
    )


def _clear_export_toasts(screen: Screen[Any]) -> None:
    """The "writing…" toast says the export is under way: once it is not, it goes. (Textual
    has no public call to withdraw one toast; clear_notifications would take the others.)"""
    app = screen.app
    for notification in list(app._notifications):
        if notification.title == "Export":
            app._unnotify(notification)


def _ask_overwrite(screen: Screen[Any], run: Run, db_path: Path, path: Path) -> None:
    def answer(yes: bool | None) -> None:
        if yes:
            _export_worker(screen, run, db_path, path, force=True)

    screen.app.push_screen(
        ConfirmModal(f"{path} exists. Replace it?", yes="Replace", no="Keep it"), answer
    )


def delete(screen: Screen[Any], run: Run, db_path: Path, deleted: Callable[[], None]) -> None:
    """Ask, then delete the run and all it produced; `deleted` runs once it is gone."""

    def answer(yes: bool | None) -> None:
        if not yes:
            return
        try:
            with Store.open(db_path) as store:
                runs.delete_run(store, run.id)
        except (UserError, sqlite3.Error, OSError) as exc:  # rolled back: nothing deleted
            screen.app.push_screen(ErrorModal("Delete failed", failure_line(exc, db_path)))
            return
        screen.notify(f"run {run.id} deleted")
        deleted()

    try:
        with Store.open(db_path) as store:  # what goes and what stays (one small read)
            question = runs.deletion_question(store, run)
    except (UserError, sqlite3.Error, OSError) as exc:  # a store it cannot read: nothing to ask
        screen.app.push_screen(ErrorModal("Delete failed", failure_line(exc, db_path)))
        return
    screen.app.push_screen(ConfirmModal(question, yes="Delete", no="Keep"), answer)


def save_figure(screen: Screen[Any], run_ids: Sequence[int], db_path: Path) -> None:
    """The runs' Corr@k figure as `ccapp plot` draws it, into the reports folder: run as a
    child (as every job is), so the app never loads matplotlib; the path, or the error, is
    said when it is written."""
    from ccapp.config import paths

    out = paths().reports_dir / f"corr-{'-'.join(map(str, run_ids))}.png"

    def plot() -> None:
        command = [sys.executable, "-m", "ccapp", "plot", *map(str, run_ids)]
        done = subprocess.run(
            [*command, "--out", str(out), "--force", "--db", str(db_path)],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            screen.app.call_from_thread(screen.notify, str(out), title="figure saved")
        else:
            error = (done.stderr.strip().splitlines() or ["ccapp plot failed"])[-1]
            screen.app.call_from_thread(
                screen.app.push_screen, ErrorModal("The figure was not saved", error)
            )

    screen.notify(f"drawing the Corr@k figure of run {', '.join(map(str, run_ids))}…")
    screen.run_worker(plot, thread=True, name="Saving the figure", exit_on_error=False)
