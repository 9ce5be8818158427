"""Re-judging an eval run's stored continuations, honestly: the dialog offers a judge that
can run here (GPT-4o only with an OpenAI key, else the heuristic), and a judge that has
judged every continuation already is said to have done so before anything starts, with
`--force` offered to judge them all again."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from textual.screen import Screen

from ccapp.errors import UserError
from ccapp.screens.modals import ConfirmModal, ErrorModal, PromptModal
from ccapp.store import Run, RunKind, Store
from ccapp.store import evals as rows_store


def rejudge_default() -> str:
    """The judge the re-judge dialog offers: one that can run here (GPT-4o only with a key)."""
    from ccapp.screens.eval_form import key_is_set

    return "gpt-4o" if key_is_set() else "heuristic"


def already_judged(judge: str, total: int) -> str:
    """What re-judging says when `judge` has judged every continuation already."""
    return (
        f"already judged by {judge}: all {total} continuations have its verdict; "
        "--force to judge again. Judge them all again?"
    )


def rejudge(screen: Screen[Any], run: Run, db_path: Path) -> None:
    """Ask for a judge (one that can run is offered), count what it has left to judge, then
    judge that, or say that nothing is left and offer --force."""
    if run.kind is not RunKind.EVAL:
        screen.notify(f"run {run.id} is {run.kind.a_run}: only eval runs are judged.")
        return

    def chosen(spec: str | None) -> None:
        if not spec:
            return
        from ccapp.engines.judges.registry import parse_judge_spec

        try:
            canonical = parse_judge_spec(spec).canonical
        except UserError as exc:
            screen.app.push_screen(ErrorModal("Not a judge", exc.message))
            return
        screen.run_worker(
            partial(_count, screen, run.id, db_path, canonical),
            thread=True,
            exclusive=True,
            group="rejudge",
            name="Counting what is left to judge",
            exit_on_error=False,
        )

    screen.app.push_screen(
        PromptModal(
            "Judge the stored continuations with (heuristic, gpt-4o, openai:NAME@URL, hf:PATH):",
            rejudge_default(),
            placeholder="heuristic",
        ),
        chosen,
    )


def _count(screen: Screen[Any], run_id: int, db_path: Path, judge: str) -> None:
    with Store.open(db_path) as store:
        todo = len(rows_store.unjudged(store, run_id, judge))
        total = rows_store.count_continuations(store, run_id)
    screen.app.call_from_thread(_judge_or_ask, screen, run_id, db_path, judge, todo, total)


def _judge_or_ask(
    screen: Screen[Any], run_id: int, db_path: Path, judge: str, todo: int, total: int
) -> None:
    from ccapp.screens.run_actions import start_job

    args = ["judge", str(run_id), "--judge", judge]
    title = f"judge run {run_id} with {judge}"
    if todo or not total:
        start_job(screen, args, title, db_path)
        return

    def answer(yes: bool | None) -> None:
        if yes:
            start_job(screen, [*args, "--force"], f"{title} (--force)", db_path)

    screen.app.push_screen(
        ConfirmModal(already_judged(judge, total), yes="Judge again (--force)", no="Keep"), answer
    )
