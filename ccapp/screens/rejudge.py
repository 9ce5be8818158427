"""Re-judging an eval run's stored continuations, honestly: a list of the judges that can
run here (GPT-4o is listed, but only picked with an OpenAI key), those that judged this run
before, and "another judge…" to type one, each with how much of the run it has judged; a
judge that has judged every continuation already is said to have done so before anything
starts, with `--force` offered to judge them all again."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from textual.screen import Screen

from ccapp.errors import UserError
from ccapp.screens.modals import ConfirmModal, ErrorModal, PromptModal
from ccapp.screens.picker import Choices, Picking, TablePicker
from ccapp.screens.widgets import tail
from ccapp.store import Run, RunKind, Store
from ccapp.store import evals as rows_store

OTHER = "other"  # the picker's row for a judge typed by hand
GPT4O = "openai:gpt-4o"


def judge_rows(judged: dict[str, int], key_set: bool) -> list[tuple[str, str]]:
    """The picker's rows, (judge, what it is): the heuristic, GPT-4o, then every other judge
    that has judged this run (a server or an HF model used before)."""
    gpt = "OpenAI API, the paper's judge" if key_set else "OpenAI API: needs OPENAI_API_KEY"
    rows = [("heuristic", "offline, instant"), (GPT4O, gpt)]
    rows += [(j, "judged this run before") for j in sorted(judged) if j not in dict(rows)]
    return rows


def judge_picking(run: Run, key_set: bool) -> Picking:
    """The judges to pick from, each with how much of the run it has judged (read from the
    store in the picker's thread); GPT-4o without a key says what to set instead."""

    def read(store: Store) -> Choices:
        judged = rows_store.verdict_counts(store, run.id)
        total = rows_store.count_continuations(store, run.id)
        rows = [
            (spec, (tail(spec, 18), what, f"{judged.get(spec, 0)}/{total}"))
            for spec, what in judge_rows(judged, key_set)
        ]
        rows.append((OTHER, ("another judge…", "openai:NAME@URL or hf:PATH", "")))
        return Choices(rows)

    def refuse(spec: str) -> str | None:
        if spec == GPT4O and not key_set:
            return (
                "GPT-4o needs an OpenAI key: set OPENAI_API_KEY, or api_key_file under "
                "[openai] in the config file, then start ccapp again."
            )
        return None

    return Picking(
        "judge",
        f"Judge run {run.id}'s stored continuations with (enter picks, esc cancels):",
        (("judge", 18), ("", 32), ("judged", 11)),
        read,
        refuse,
    )


def already_judged(judge: str, total: int) -> str:
    """What re-judging says when `judge` has judged every continuation already."""
    return (
        f"already judged by {judge}: all {total} continuations have its verdict; "
        "--force to judge again. Judge them all again?"
    )


def rejudge(screen: Screen[Any], run: Run, db_path: Path) -> None:
    """Offer the judges (with how much each has judged), then judge what the chosen one has
    left, or say that nothing is left and offer --force."""
    from ccapp.screens.eval_form import key_is_set

    if run.kind is not RunKind.EVAL:
        screen.notify(f"run {run.id} is {run.kind.a_run}: only eval runs are judged.")
        return

    def typed(spec: str | None) -> None:
        if not spec:
            return
        from ccapp.engines.judges.registry import parse_judge_spec

        try:
            canonical = parse_judge_spec(spec).canonical
        except UserError as exc:
            screen.app.push_screen(ErrorModal("Not a judge", exc.message))
            return
        counted(canonical)

    def counted(judge: str) -> None:
        screen.run_worker(
            partial(_count, screen, run.id, db_path, judge),
            thread=True,
            exclusive=True,
            group="rejudge",
            name="Counting what is left to judge",
            exit_on_error=False,
        )

    def chosen(spec: str | None) -> None:
        if spec == OTHER:
            screen.app.push_screen(
                PromptModal(
                    "Judge with (openai:NAME@URL for a server, hf:PATH_OR_ID for a local "
                    "model, or heuristic, gpt-4o):",
                    placeholder="openai:NAME@http://127.0.0.1:8000/v1",
                ),
                typed,
            )
        elif spec:
            counted(spec)

    screen.app.push_screen(TablePicker(judge_picking(run, key_is_set()), db_path), chosen)


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
