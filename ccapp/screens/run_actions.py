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
from ccapp.screens.base import failure_line
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
    screen.app.push_screen(live(ChildJob([*args, "--db", str(db_path)]), title, db_path))


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
    """Pick a comparable run (another eval run), then show the two side by side."""
    from ccapp.screens.compare import ComparePicker, CompareScreen

    if run.kind is not RunKind.EVAL:
        screen.notify(f"run {run.id} is {run.kind.a_run}: only eval runs are compared.")
        return

    def chosen(other: int | None) -> None:
        if other is not None:
            screen.app.push_screen(CompareScreen(run.id, other, db_path))

    screen.app.push_screen(ComparePicker(run, db_path), chosen)


def export(screen: Screen[Any], run: Run, db_path: Path) -> None:
    """Ask where, then write the run's JSON report (asking before overwriting a file)."""
    from ccapp.engines.c2eval.report import default_report_path

    def chosen(value: str | None) -> None:
        if value:
            _export_worker(screen, run.id, db_path, Path(value), force=False)

    screen.app.push_screen(
        PromptModal("Write the JSON report to:", str(default_report_path(run.id))), chosen
    )


def _export_worker(
    screen: Screen[Any], run_id: int, db_path: Path, path: Path, *, force: bool
) -> None:
    screen.run_worker(
        partial(_write_report, screen, run_id, db_path, path, force),
        thread=True,
        exclusive=True,
        group="export",
        name="Export",
        exit_on_error=False,
    )


def _write_report(screen: Screen[Any], run_id: int, db_path: Path, path: Path, force: bool) -> None:
    from ccapp.engines.c2eval.report import build_report, report_text, write_new_file

    if path.expanduser().exists() and not force:
        screen.app.call_from_thread(_ask_overwrite, screen, run_id, db_path, path)
        return
    # Building the report reads every verdict and bootstraps each interval: a second or more
    # on a big run, so the user is told it has started.
    screen.app.call_from_thread(
        screen.notify, f"writing run {run_id}'s report to {path}…", title="Export", timeout=3
    )
    with Store.open(db_path) as store:  # a failure reaches the screen's error modal
        text = report_text(build_report(store, run_id))
    write_new_file(path, text, force=force)
    screen.app.call_from_thread(screen.notify, f"report written to {path}", title="Exported")


def _ask_overwrite(screen: Screen[Any], run_id: int, db_path: Path, path: Path) -> None:
    def answer(yes: bool | None) -> None:
        if yes:
            _export_worker(screen, run_id, db_path, path, force=True)

    screen.app.push_screen(
        ConfirmModal(f"{path} exists. Overwrite it?", yes="Overwrite", no="Keep it"), answer
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

    screen.app.push_screen(
        ConfirmModal(
            f"Delete run {run.id} and everything it produced? This cannot be undone.",
            yes="Delete",
            no="Keep",
        ),
        answer,
    )


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
