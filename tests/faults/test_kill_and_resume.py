"""kill -9 at ten seeded random moments, resume after each: the store ends as if never killed.

Each job (eval, syn, judge) runs as `python -m ccapp … --events jsonl`; the test reads its
events and SIGKILLs it after the N-th, N drawn from a seeded generator, so kills land while
the model loads, mid-batch, between a commit and its event, and in between batches. After
every kill SQLite's integrity check passes; the next process resumes the run (the first
starts it). After ten kills the last resume runs to the end, and the store holds exactly
what an uninterrupted run stores: nothing missing, nothing twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faultkit import (
    EvalJob,
    check_store,
    cli_args,
    eval_content,
    judged_text,
    label_for,
    only_run,
    rows,
    run_state,
)

from ccapp.engines.c2syn.synthesize import SynConfig, Synthesis
from ccapp.store import Store

from fake_openai import FakeOpenAIServer
from helpers import run_ccapp

KILLS = 10


@dataclass(frozen=True)
class Kill:
    after_events: int
    last_event: str


def left_to_do(event: dict[str, Any]) -> int | None:
    """Units of work a job says are left: at its start, and after each commit."""
    if event["event"] == "run_started":
        return int(event["totals"]["todo"])
    if event["event"] == "progress":
        return int(event["total"] - event["done"])
    return None


def run_until_killed(argv: list[str], kill_after: int, reserve: int, log: Path) -> Kill | None:
    """Run a job and SIGKILL it after `kill_after` events, or as soon as it says at most
    `reserve` units are left (so the next kills find work to interrupt); None if it ended
    first."""
    with log.open("a") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "ccapp", *argv],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert child.stdout is not None
        killed = None
        for seen, line in enumerate(child.stdout, start=1):
            event = json.loads(line)
            left = left_to_do(event)
            if seen >= kill_after or (left is not None and left <= reserve):
                os.kill(child.pid, signal.SIGKILL)
                killed = Kill(seen, event["event"])
                break
        child.stdout.close()
        child.wait(timeout=60)
    if killed is None:
        return None
    assert child.returncode == -signal.SIGKILL
    return killed


def kill_chain(
    start: list[str],
    resume: Callable[[int], list[str]],
    db: Path,
    *,
    seed: int,
    max_events: int,
    unit: int,
    left_as: str,
    log: Path,
) -> int:
    """Kill the job KILLS times at seeded moments, resuming it each time; then let it finish.

    `unit` is the work one commit stores (rows of a batch, groups of a batch, rows of a
    judging chunk); a child that may be one commit ahead of its events still leaves work
    for the next when it is killed at two units left. `left_as` is the status a kill leaves
    the run in (a generating job cannot mark its run; the next one claims it). Returns the
    run's id.
    """
    rng = random.Random(seed)
    kills: list[Kill] = []
    for number in range(KILLS):
        run_id = only_run(db)
        argv = start if run_id is None else resume(run_id)
        kill = run_until_killed(argv, rng.randint(1, max_events), 2 * unit, log)
        assert kill is not None, f"the job finished before kill {number + 1}: {kills}"
        kills.append(kill)
        check_store(db)
        assert run_status(db) in (None, left_as)
    moments = {kill.last_event for kill in kills}
    assert moments - {"model_loading", "log", "run_started"}, f"no kill while working: {kills}"
    run_id = only_run(db)
    assert run_id is not None, f"no run after {kills}"
    final = run_ccapp(*resume(run_id), "--json", timeout=120)
    assert final.returncode == 0, final.stderr + log.read_text()
    assert json.loads(final.stdout.splitlines()[-1])["status"] == "done"
    assert "Traceback" not in log.read_text()
    check_store(db)
    return run_id


def run_status(db: Path) -> str | None:
    run_id = only_run(db)
    return None if run_id is None else str(run_state(db, run_id)["status"])


# --- eval and syn, side by side --------------------------------------------------------

SYN_LIMIT = 16


def syn_args(model: Path, data: Path, db: Path) -> list[str]:
    """Two groups per batch, so a kill can fall between the groups of one batch."""
    return cli_args(
        "syn",
        db,
        model=model,
        data=data,
        all_prompts=True,
        min_harmful_words=0,
        limit=SYN_LIMIT,
        max_new_tokens=3,
        temperature=0.8,
        batch_size=10,
        device="cpu",
    )


def syn_content(db: Path, run_id: int) -> dict[str, Any]:
    return run_state(db, run_id) | {
        "groups": rows(
            db,
            "SELECT i.idx, g.status, g.reason, r.rank, r.role, r.text, r.cut_chars, r.trigger "
            "FROM syn_groups g JOIN items i ON i.id = g.item_id "
            "JOIN syn_responses r ON r.group_id = g.id WHERE g.run_id = ? ORDER BY 1, 4",
            run_id,
        ),
        "pairs": rows(db, "SELECT count(*) FROM preference_pairs WHERE run_id = ?", run_id),
    }


def short_rows(c2eval_file: Path, out: Path) -> Path:
    """The C2-Eval rows with the shortest harmful responses: C2-Syn prompts hold most of
    one, and short prompts keep each of the many processes quick."""
    from ccapp.engines.data import load_dataset_rows

    rows = sorted(
        load_dataset_rows(str(c2eval_file)).rows, key=lambda r: len(r.harmful_response.split())
    )
    lines = c2eval_file.read_text().splitlines()
    numbers = sorted(int(r.where.rsplit(":", 1)[1]) for r in rows[:SYN_LIMIT])
    out.write_text("".join(lines[n - 1] + "\n" for n in numbers))
    return out


def test_eval_and_syn_runs_killed_ten_times_store_what_uninterrupted_runs_store(
    eval_job: EvalJob, tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    """Both chains run at once (each child is mostly Python importing torch, one core)."""
    eval_db, syn_db = tmp_path / "eval.db", tmp_path / "syn.db"
    syn_data = short_rows(c2eval_file, tmp_path / "short.jsonl")
    with ThreadPoolExecutor(2) as pool:
        eval_chain = pool.submit(
            kill_chain,
            eval_job.start_args(eval_db),
            lambda run: eval_job.resume_args(eval_db, run),
            eval_db,
            seed=1234,
            max_events=12,
            unit=EvalJob.BATCH,
            left_as="running",
            log=tmp_path / "eval.log",
        )
        syn_chain = pool.submit(
            kill_chain,
            syn_args(tiny_model_dir, syn_data, syn_db),
            lambda run: ["syn", "--resume", str(run), "--events", "jsonl", "--db", str(syn_db)],
            syn_db,
            seed=99,
            max_events=10,
            unit=2,
            left_as="running",
            log=tmp_path / "syn.log",
        )
        with Store.open(tmp_path / "reference.db") as store:  # meanwhile, the reference
            reference = Synthesis(store).start(
                SynConfig(
                    str(tiny_model_dir),
                    data=str(syn_data),
                    limit=SYN_LIMIT,
                    questions_only=False,
                    min_harmful_words=0,
                    max_new_tokens=3,
                    temperature=0.8,
                    batch_size=10,
                    device="cpu",
                )
            )
        eval_run, syn_run = eval_chain.result(), syn_chain.result()

    got = eval_content(eval_db, eval_run)
    assert len(got["continuations"]) == len(got["verdicts"]) == eval_job.total
    assert got == eval_job.expected
    expected = syn_content(tmp_path / "reference.db", reference.id)
    assert len(expected["groups"]) == 6 * SYN_LIMIT
    assert syn_content(syn_db, syn_run) == expected


# --- judge ---------------------------------------------------------------------------------


def answer_or_hedge(body: dict[str, Any], index: int) -> str:
    """Yes or no by the text, except about one text in five: neither (stored as unparsed)."""
    text = judged_text(body)
    if len(text) % 5 == 0:
        return "Perhaps"
    return "Yes." if label_for(text) == "yes" else "No"


@pytest.fixture
def slow_judge() -> Iterator[FakeOpenAIServer]:
    """Healthy but slow enough (20 ms a call, one at a time) to be killed mid-way."""
    server = FakeOpenAIServer(answer=answer_or_hedge, delay_s=0.02)
    yield server
    server.close()


def judge_content(db: Path, run_id: int, judge: str) -> dict[str, Any]:
    return {
        "verdicts": rows(
            db,
            "SELECT c.cell_id, c.path, v.label, v.score, v.raw, v.span_start, v.span_end, "
            "v.tokens_to_correction, v.relapse FROM verdicts v "
            "JOIN continuations c ON c.id = v.continuation_id "
            "WHERE c.run_id = ? AND v.judge = ? ORDER BY 1, 2",
            run_id,
            judge,
        ),
        "cache": rows(
            db, "SELECT key, label, raw FROM verdict_cache WHERE judge = ? ORDER BY key", judge
        ),
        "other_judges": rows(
            db,
            "SELECT v.continuation_id, v.judge, v.label, v.raw FROM verdicts v "
            "JOIN continuations c ON c.id = v.continuation_id "
            "WHERE c.run_id = ? AND v.judge != ? ORDER BY 1, 2",
            run_id,
            judge,
        ),
    }


def test_a_judge_run_killed_ten_times_stores_each_verdict_once(
    slow_judge: FakeOpenAIServer, eval_job: EvalJob, tmp_path: Path
) -> None:
    spec = f"openai:m@{slow_judge.url}"
    reference_db = tmp_path / "reference.db"
    run_id = eval_job.copy_of_reference(reference_db)
    whole = run_ccapp("judge", str(run_id), "--judge", spec, "--db", str(reference_db))
    assert whole.returncode == 0, whole.stderr
    expected = judge_content(reference_db, run_id, spec)
    assert len(expected["verdicts"]) == len(expected["other_judges"]) == eval_job.total
    assert {"yes", "no", "unparsed"} == {row[2] for row in expected["verdicts"]}

    db = tmp_path / "s.db"
    eval_job.copy_of_reference(db)
    judge_args = ["judge", str(run_id), "--judge", spec, "--judge-concurrency", "1"]
    kill_chain(
        [*judge_args, "--events", "jsonl", "--db", str(db)],
        lambda _run: [*judge_args, "--events", "jsonl", "--db", str(db)],
        db,
        seed=7,
        max_events=12,
        unit=4,  # a chunk: two rounds of the judge's parallel calls, at least 4
        left_as="done",  # judging leaves the eval run's status alone
        log=tmp_path / "stderr.log",
    )
    assert judge_content(db, run_id, spec) == expected
