"""A judge server in a storm: every continuation still ends with exactly one verdict.

The server (real HTTP on 127.0.0.1, the real `openai` client) answers a seeded mix of
429 + Retry-After storms, 500s, hangs past the client's timeout, dropped connections and
answers that are neither yes nor no; some texts it never judges at all. Whatever survives
the client's retries is a yes/no verdict equal to the server's answer, or a counted
`unparsed` or `error` verdict, never a lost or doubled one. Once the server heals, a later
`ccapp judge` asks again about the errors only (the cache answers the rest), and
`--redo-unparsed` about the unparsed ones, until every verdict is the healthy answer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import EvalJob, check_store, judged_text, label_for, rows

from ccapp.engines.c2eval.report import run_metrics
from ccapp.engines.judges.registry import JudgeOptions, make_judge
from ccapp.engines.judges.runner import judge_stored
from ccapp.store import Store, runs

from fake_openai import FakeOpenAIServer
from helpers import run_ccapp

RETRY_FAILURES = {
    "HTTP 429 after retries",
    "HTTP 500 after retries",
    "timed out after retries",
    "connection failed after retries",
}


class Storm:
    """What the server does with request n: a seeded plan, a storm first, some texts lost."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        mix = ["429"] * 2 + ["500"] * 3 + ["hang"] * 2 + ["drop"] * 2 + ["ok"] * 11
        self.plan = ["429"] * 6 + [rng.choice(mix) for _ in range(500)]  # a storm, then weather
        self.healed = False

    @staticmethod
    def lost(text: str) -> bool:
        """Texts the sick server fails every time (they must end as errors)."""
        return len(text) % 7 == 3

    @staticmethod
    def hedged(text: str) -> bool:
        """Texts the sick server answers with neither yes nor no."""
        return len(text) % 7 == 5

    def behaviour(self, number: int, body: dict[str, Any]) -> str:
        if self.healed or "messages" not in body:
            return "ok"
        return "500" if self.lost(judged_text(body)) else self.plan[number]

    def answer(self, body: dict[str, Any], index: int) -> str:
        text = judged_text(body)
        if not self.healed and self.hedged(text):
            return "It depends on the context."
        return "Yes." if label_for(text) == "yes" else "**No**"


@pytest.fixture
def storm() -> Iterator[tuple[Storm, FakeOpenAIServer]]:
    weather = Storm(seed=5)
    server = FakeOpenAIServer(plan=weather.behaviour, answer=weather.answer, hang_s=1.0)
    yield weather, server
    server.close()


def verdict_rows(db: Path, run_id: int, judge: str) -> list[tuple[Any, ...]]:
    """(continuation id, its text, label, raw) of every verdict of `judge` on the run."""
    return rows(
        db,
        "SELECT c.id, c.text, v.label, v.raw FROM verdicts v "
        "JOIN continuations c ON c.id = v.continuation_id "
        "WHERE c.run_id = ? AND v.judge = ? ORDER BY c.id",
        run_id,
        judge,
    )


def test_a_storm_ends_each_continuation_with_one_verdict_and_later_runs_heal_it(
    storm: tuple[Storm, FakeOpenAIServer], eval_job: EvalJob, tmp_path: Path
) -> None:
    weather, server = storm
    db = tmp_path / "s.db"
    run_id = eval_job.copy_of_reference(db)
    spec = f"openai:judge@{server.url}"
    judge = make_judge(spec, JudgeOptions(concurrency=8, timeout_s=0.4, max_retries=1))
    with Store.open(db) as store:
        counts = judge_stored(store, run_id, judge)
        metrics = run_metrics(store, runs.get_run(store, run_id), spec)
    check_store(db)

    stored = verdict_rows(db, run_id, spec)
    total = eval_job.total
    assert {k: counts[k] for k in ("judged", "total")} == {"judged": total, "total": total}
    assert counts["cost_estimate"]["calls"] == total  # said before the first call
    assert len(stored) == len({cid for cid, *_ in stored}) == total  # one verdict each
    assert {"429", "500", "hang", "drop"} <= set(server.behaviours)
    errors = [(text, raw) for _, text, label, raw in stored if label == "error"]
    unparsed = [text for _, text, label, _ in stored if label == "unparsed"]
    lost = {text for _, text, *_ in stored if weather.lost(text)}
    assert lost and lost <= {text for text, _ in errors}
    assert {raw for _, raw in errors} <= RETRY_FAILURES and len(errors) < total
    assert unparsed and all(weather.hedged(text) for text in unparsed)
    for _, text, label, _ in stored:  # a late or retried answer never lands on another text
        if label in ("yes", "no"):
            assert label == label_for(text)
    assert sum(metrics["errors"].values()) == len(errors)
    assert sum(metrics["unparsed"].values()) == len(unparsed)
    assert sum(metrics["n"].values()) + len(errors) + len(unparsed) == total

    weather.healed = True
    asked_before = len(server.requests)
    again = run_ccapp("judge", str(run_id), "--judge", spec, "--json", "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["metrics"]["judged_now"] == len(errors)
    asked = [judged_text(body) for body in server.requests[asked_before:] if "messages" in body]
    assert asked and set(asked) <= {text for text, _ in errors}  # the cache answers the rest
    after = verdict_rows(db, run_id, spec)
    assert [label for *_, label, _ in after].count("error") == 0
    assert sorted(text for _, text, label, _ in after if label == "unparsed") == sorted(unparsed)

    asked_before = len(server.requests)
    redo = run_ccapp(
        "judge", str(run_id), "--judge", spec, "--redo-unparsed", "--json", "--db", str(db)
    )
    assert redo.returncode == 0, redo.stderr
    assert json.loads(redo.stdout.splitlines()[-1])["metrics"]["judged_now"] == len(unparsed)
    assert {judged_text(b) for b in server.requests[asked_before:] if "messages" in b} <= set(
        unparsed
    )
    healed = verdict_rows(db, run_id, spec)
    assert len(healed) == total
    assert [(cid, label) for cid, _, label, _ in healed] == [
        (cid, label_for(text)) for cid, text, *_ in healed
    ]
    check_store(db)
