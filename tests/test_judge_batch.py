"""Judging through OpenAI's Batch API, against a loopback server speaking /v1/files and
/v1/batches to the real `openai` client: a full run, a run killed after upload and resumed,
lost answers, expired and failed requests and batches, and the cost estimate."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ccapp.engines.judges.base import JudgeInput
from ccapp.engines.judges.openai_batch import BatchSettings
from ccapp.engines.judges.openai_judge import SYSTEM
from ccapp.engines.judges.pricing import PRICES, cost_usd
from ccapp.engines.judges.registry import JudgeOptions, make_judge
from ccapp.engines.judges.runner import judge_stored
from ccapp.errors import UserError
from ccapp.store import RunKind, Store, batches, runs
from ccapp.store import evals as rows_store

from fake_openai import FakeOpenAIServer
from helpers import run_ccapp

PATHS, KS, REQUESTS = 3, (10, 20), 3
CONTINUATIONS = PATHS * len(KS) * REQUESTS  # 18
TEXTS = (" However, I cannot help ({}.{}).", " then step {}.{}.")  # path 0 corrects, others not
FAST = JudgeOptions(batch=BatchSettings(poll_s=0.05))


def says_yes_to_cannot(body: dict[str, Any], index: int) -> str:
    """The loopback judge: yes when the continuation holds 'cannot', else no."""
    found = re.search(r"<continuation>(.*?)</continuation>", body["messages"][-1]["content"], re.S)
    return "Yes." if found and "cannot" in found.group(1) else "No"


def build_run(db: Path) -> int:
    """An eval run written by hand: 3 requests × k 10,20 × 3 paths, every text different."""
    with Store.open(db) as store:
        config = {"ks": list(KS), "paths": PATHS}
        run = runs.create_run(store, RunKind.EVAL, config, model="m", judge="heuristic")
        requests = [
            (i, i + 1, f"How do I do harm {i}?", f"First do {i}, then", None)
            for i in range(REQUESTS)
        ]
        items = rows_store.insert_items(store, run.id, requests)
        cells = [
            rows_store.NewCell(it.id, k, "Sure.", f"Sure. First do {it.idx}", "p", 9, False)
            for it in items
            for k in KS
        ]
        rows_store.insert_cells(store, run.id, cells)
        made = [
            (rows_store.NewContinuation(c.id, p, TEXTS[p > 0].format(c.id, p), 5, "length"), None)
            for c in rows_store.get_cells(store, run.id)
            for p in range(PATHS)
        ]
        rows_store.save_continuations(store, run.id, made)
        return run.id


@dataclass
class Case:
    """A loopback server, a store with one run, and the judge that points at the server."""

    server: FakeOpenAIServer
    db: Path
    run_id: int
    spec: str

    def args(self, *extra: str, batch: bool = True, spec: str | None = None) -> list[str]:
        fast = ("--judge-batch", "--batch-poll", "0.05") if batch else ()
        return [
            "judge",
            str(self.run_id),
            "--judge",
            spec or self.spec,
            "--db",
            str(self.db),
            *fast,
            *extra,
        ]

    def judge(self, *extra: str, batch: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
        return run_ccapp(*self.args(*extra, batch=batch), **kw)

    def summary(self, *extra: str, batch: bool = True) -> dict[str, Any]:
        """`ccapp judge … --json`, which must succeed: its metrics."""
        result = self.judge("--json", *extra, batch=batch)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout.splitlines()[-1])["metrics"])

    def start(self, **popen: Any) -> subprocess.Popen[str]:
        """The batch command in the background, as a user's terminal runs it."""
        return subprocess.Popen([sys.executable, "-m", "ccapp", *self.args()], text=True, **popen)

    def verdicts(self) -> dict[int, str]:
        """continuation id -> label, checking that none has two verdicts of the judge."""
        with Store.open(self.db) as store:
            rows = store.rows(
                "SELECT v.continuation_id AS id, v.label AS label FROM verdicts v "
                "JOIN continuations t ON t.id = v.continuation_id "
                "WHERE t.run_id = ? AND v.judge = ?",
                [self.run_id, self.spec],
            )
        found = {r["id"]: r["label"] for r in rows}
        assert len(found) == len(rows), "a continuation has two verdicts of one judge"
        return found

    def expected(self) -> dict[int, str]:
        with Store.open(self.db) as store:
            stored = rows_store.continuations(store, self.run_id)
        return {c.id: "yes" if "cannot" in c.text else "no" for c in stored}

    def stored_batches(self) -> list[batches.StoredBatch]:
        with Store.open(self.db) as store:
            return batches.of_run(store, self.run_id)

    def usage(self) -> rows_store.JudgeUsage:
        with Store.open(self.db) as store:
            (usage,) = [u for u in rows_store.usage(store, self.run_id) if u.judge == self.spec]
        return usage

    def posts(self, endpoint: str) -> list[dict[str, Any]]:
        return [r for r in self.server.requests if r.get("POST", "").endswith(endpoint)]

    def chat_calls(self) -> list[dict[str, Any]]:
        return [r for r in self.server.requests if "messages" in r]

    def requests_file(self, number: int = 0) -> list[dict[str, Any]]:
        batch = sorted(self.server.batches.values(), key=lambda b: b["created_at"])[number]
        data = self.server.files[batch["input_file_id"]]
        return [json.loads(line) for line in data.splitlines()]


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Callable[..., Case]]:
    """case(model="gpt-4o", **server_options) -> a Case; its server closes after the test."""
    started: list[FakeOpenAIServer] = []

    def make(model: str = "gpt-4o", **options: Any) -> Case:
        server = FakeOpenAIServer(**({"answer": says_yes_to_cannot} | options))
        started.append(server)
        db = tmp_path / "s.db"
        return Case(server, db, build_run(db), f"openai:{model}@{server.url}")

    yield make
    for server in started:
        server.close()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s} s"
        time.sleep(0.1)


# --- a whole run ---------------------------------------------------------------------------


def test_a_batch_run_judges_every_continuation_once_at_the_batch_price(
    case: Callable[..., Case],
) -> None:
    c = case()
    metrics = c.summary()

    # One requests file, uploaded for the Batch API, one batch over it.
    assert [u["purpose"] for u in c.posts("/files")] == ["batch"]
    (created,) = c.posts("/batches")
    assert created["endpoint"] == "/v1/chat/completions" and created["completion_window"] == "24h"
    lines = c.requests_file()
    probe = c.chat_calls()
    assert len(probe) == 1  # the first request alone, synchronously, settles the parameters
    assert len(lines) == CONTINUATIONS - 1
    assert len({line["custom_id"] for line in lines}) == len(lines)
    assert all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in lines)
    # Each line is the body a synchronous call sends: same model, system text, seed, budget.
    same = {k: v for k, v in probe[0].items() if k != "messages"}
    assert all({k: v for k, v in line["body"].items() if k != "messages"} == same for line in lines)
    system = {"role": "system", "content": SYSTEM}
    assert all(line["body"]["messages"][0] == system for line in lines)
    assert same["temperature"] == 0 and same["max_tokens"] == 3

    # Every continuation judged once, with the labels the answers say.
    assert c.verdicts() == c.expected()
    assert metrics["batch"] == {
        "batches": list(c.server.batches),
        "resumed": 0,
        "cached": 0,
        "probe": 1,
        "requests": CONTINUATIONS - 1,
        "stored": CONTINUATIONS - 1,
        "errors": 0,
        "re_asked": 0,
        "left": 0,
    }
    assert metrics["judged_now"] == CONTINUATIONS and metrics["corr_mean"] == round(1 / 3, 4)
    (stored,) = c.stored_batches()
    assert [stored.batch_id] == list(c.server.batches) and stored.state == "stored"
    # The loopback server bills 10 prompt and 5 completion tokens a call: one call at the
    # list price, the batch's at half of it.
    one, usage = cost_usd("gpt-4o", 10, 5), c.usage()
    assert one is not None
    assert usage.calls == CONTINUATIONS and usage.prompt_tokens == 10 * CONTINUATIONS
    assert usage.cost_usd == pytest.approx(one + (CONTINUATIONS - 1) * one / 2, abs=2e-6)

    # The same texts judged again (the verdicts gone): the cache answers, nothing is asked.
    with Store.open(c.db) as store, store.write() as write:
        write.execute("DELETE FROM verdicts WHERE judge = ?", [c.spec])
    again = c.summary()
    assert again["batch"]["cached"] == CONTINUATIONS and again["batch"]["requests"] == 0
    assert len(c.posts("/files")) == 1 and len(c.chat_calls()) == 1
    assert c.verdicts() == c.expected()


def test_a_batch_run_killed_after_upload_resumes_the_same_batch_and_stores_each_verdict_once(
    case: Callable[..., Case],
) -> None:
    c = case(hold_batches=True)
    job = c.start(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: any(b.batch_id for b in c.stored_batches()), "storing the batch id")
    finally:
        job.kill()  # SIGKILL: no chance to tidy up
        job.wait(timeout=30)
    (killed,) = c.stored_batches()
    assert len(c.verdicts()) == 1  # only the synchronous first request
    c.server.hold_batches = False

    metrics = c.summary()

    assert len(c.posts("/files")) == 1 and len(c.posts("/batches")) == 1
    assert metrics["batch"]["batches"] == [killed.batch_id] and metrics["batch"]["resumed"] == 1
    assert metrics["batch"]["requests"] == 0  # nothing new was submitted
    assert len(c.chat_calls()) == 1  # the killed command's first request, never again
    assert len(c.server.batch_bodies) == CONTINUATIONS - 1  # each batch line ran once
    assert c.verdicts() == c.expected()
    assert c.usage().calls == CONTINUATIONS  # paid once per continuation


def test_ctrl_c_while_waiting_leaves_the_batch_running_and_resumable(
    case: Callable[..., Case],
) -> None:
    c = case(hold_batches=True)
    job = c.start(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: bool(c.server.batches), "creating the batch")
    time.sleep(0.3)  # waiting between status checks
    job.send_signal(signal.SIGINT)
    _, stderr = job.communicate(timeout=30)
    assert job.returncode == 130
    assert "goes on at the server" in stderr and "--judge-batch" in stderr
    (stored,) = c.stored_batches()
    assert stored.batch_id in c.server.batches and stored.state == "in_progress"


def test_an_unfinished_batch_is_collected_even_by_a_command_without_judge_batch(
    case: Callable[..., Case],
) -> None:
    """Asking call by call what a batch is already doing would pay twice."""
    c = case(hold_batches=True, batch_polls=0)
    with Store.open(c.db) as store, pytest.raises(UserError):
        # A refused key after the batch exists stops the first command (exit 2, resumable).
        c.server.plan = lambda n, body: "401" if "/batches/" in body.get("GET", "") else "ok"
        judge_stored(store, c.run_id, make_judge(c.spec, FAST))
    c.server.plan = lambda n, body: "ok"
    c.server.hold_batches = False
    metrics = c.summary(batch=False)
    assert metrics["batch"]["resumed"] == 1 and len(c.server.batches) == 1
    assert len(c.chat_calls()) == 1  # the first command's first request only
    assert c.verdicts() == c.expected()


# --- what can go wrong on the way -----------------------------------------------------------


def test_a_create_whose_answer_was_lost_finds_its_batch_instead_of_making_another(
    case: Callable[..., Case],
) -> None:
    c = case(batch_drop=1)
    with Store.open(c.db) as store:
        counts = judge_stored(store, c.run_id, make_judge(c.spec, FAST))
    assert len(c.posts("/batches")) == 1 and len(c.server.batches) == 1  # never sent again
    assert counts["batch"]["batches"] == list(c.server.batches)
    assert c.verdicts() == c.expected()


def test_a_file_uploaded_before_the_batch_could_be_created_is_used_again(
    case: Callable[..., Case],
) -> None:
    refuse = {"create": True}
    c = case(
        plan=lambda n, body: (
            "500" if body.get("POST") == "/v1/batches" and refuse["create"] else "ok"
        )
    )
    result = c.judge()
    assert result.returncode == 2 and "could not create the batch" in result.stderr
    (stored,) = c.stored_batches()
    assert stored.state == "uploaded" and stored.batch_id is None
    refuse["create"] = False
    metrics = c.summary()
    assert len(c.posts("/files")) == 1  # the file on the server was used, not sent again
    (made,) = metrics["batch"]["batches"]
    assert c.server.batches[made]["input_file_id"] == stored.input_file_id
    assert c.verdicts() == c.expected()


def test_expired_requests_are_asked_again_in_a_smaller_batch(case: Callable[..., Case]) -> None:
    c = case(batch_end="expired", batch_runs=10)
    metrics = c.summary()
    first, second = c.requests_file(0), c.requests_file(1)
    assert (len(first), len(second)) == (CONTINUATIONS - 1, CONTINUATIONS - 1 - 10)
    assert [line["custom_id"] for line in second] == [line["custom_id"] for line in first[10:]]
    assert metrics["batch"]["re_asked"] == len(second) and metrics["batch"]["left"] == 0
    assert metrics["batch"]["stored"] == CONTINUATIONS - 1
    assert c.verdicts() == c.expected()


def test_what_never_ran_after_the_last_round_is_counted_and_left_for_later(
    case: Callable[..., Case],
) -> None:
    c = case(batch_end="cancelled", batch_runs=0)
    result = c.judge("--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.splitlines()[-1])["metrics"]
    assert len(c.server.batches) == 3  # the first and two smaller re-asks, then it stops
    assert metrics["batch"]["left"] == CONTINUATIONS - 1 and metrics["batch"]["stored"] == 0
    assert f"{CONTINUATIONS - 1} left unjudged" in result.stderr
    assert len(c.verdicts()) == 1  # the first request's; the rest stay to do
    c.server.batch_end = "completed"
    again = c.summary()
    # A new command asks its first request directly again (it learns the server anew).
    assert again["batch"]["probe"] == 1 and again["batch"]["requests"] == CONTINUATIONS - 2
    assert again["batch"]["left"] == 0
    assert c.verdicts() == c.expected()


def test_requests_the_server_answered_with_errors_are_stored_as_errors_and_counted(
    case: Callable[..., Case],
) -> None:
    def broken(body: dict[str, Any]) -> bool:
        return "step" in body["messages"][-1]["content"] and ".1)" not in str(body)

    c = case(batch_line_error=broken)
    metrics = c.summary()
    failed = sum(broken(line["body"]) for line in c.requests_file())
    assert failed > 0 and metrics["batch"]["errors"] == failed
    assert sum(label == "error" for label in c.verdicts().values()) == failed
    assert len(c.server.batches) == 1  # errors are not re-asked in a new batch...
    c.server.batch_line_error = None
    before = len(c.chat_calls())
    c.summary(batch=False)  # ...but by a later judge, as every error is
    assert len(c.chat_calls()) - before == failed
    assert c.verdicts() == c.expected()


def test_a_batch_that_fails_validation_stops_with_the_servers_message(
    case: Callable[..., Case],
) -> None:
    c = case(batch_end="failed")
    result = c.judge()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "failed" in result.stderr and "Enqueued token limit reached" in result.stderr
    c.server.batch_end = "completed"
    metrics = c.summary()
    assert len(c.server.batches) == 2 and metrics["batch"]["resumed"] == 0
    assert [b.state for b in c.stored_batches()] == ["failed", "stored"]
    assert c.verdicts() == c.expected()


def test_judge_batch_is_refused_where_there_is_no_batch_api(case: Callable[..., Case]) -> None:
    c = case()
    result = run_ccapp(*c.args(spec="heuristic"))
    assert result.returncode == 2 and "--judge-batch" in result.stderr
    rows = c.db.with_name("rows.jsonl")
    rows.write_text(json.dumps({"request": "q", "prefill": "p", "continuation": "c"}) + "\n")
    result = run_ccapp("judge", "--input", str(rows), "--judge", "heuristic", "--judge-batch")
    assert result.returncode == 2 and "not a file" in result.stderr
    c = case("served", plan=lambda n, body: "404" if body.get("POST") else "ok")
    result = c.judge()
    assert result.returncode == 2 and "has no Batch API" in result.stderr
    assert "without --judge-batch" in result.stderr


# --- the cost estimate ------------------------------------------------------------------------


def test_the_cost_estimate_comes_before_the_first_call(case: Callable[..., Case]) -> None:
    c = case()
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": c.server.url}  # the API's own client
    result = run_ccapp(*c.args("--events", "jsonl", batch=False, spec="gpt-4o"), env=env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    tags = [e["event"] for e in events]
    (said,) = [i for i, e in enumerate(events) if "cost estimate" in e.get("message", "")]
    assert said < tags.index("verdict")  # said before anything was judged
    line = events[said]["message"]
    with Store.open(c.db) as store:
        todo = rows_store.unjudged(store, c.run_id, "nobody")
    chars = sum(len(SYSTEM + JudgeInput(u.request, u.prefill, u.text).question()) for u in todo)
    tokens = int(line.split("≈")[1].split(" input tokens")[0].replace(",", ""))
    assert chars / 4 < tokens < chars / 4 + 12 * CONTINUATIONS  # chars/4, plus chat framing
    assert f"{CONTINUATIONS} calls" in line and "(chars/4)" in line
    assert f"at most {3 * CONTINUATIONS} output tokens" in line
    price = PRICES["gpt-4o"]
    full = (tokens * price.input + 3 * CONTINUATIONS * price.output) / 1e6
    assert f"≈${full:,.4f}" in line and f"--judge-batch ≈${full / 2:,.4f}" in line
    assert "list price of 2025-08" in line

    # An unknown model: the tokens, and no invented price.
    result = run_ccapp(*c.args(batch=False, spec=f"openai:my-llama@{c.server.url}"), env=env)
    assert result.returncode == 0, result.stderr
    assert "price unknown: 'my-llama' is not in ccapp's price table" in result.stderr


def test_a_batch_run_prints_the_batch_price_and_its_way(case: Callable[..., Case]) -> None:
    c = case("gpt-4o-mini")
    result = c.judge()
    assert result.returncode == 0, result.stderr
    assert "cost estimate for openai:gpt-4o-mini" in result.stderr
    assert "with the Batch API (50% of" in result.stderr
    for said in ("uploading 17 requests", "batch batch_1 created", "completed, 17 of 17 done"):
        assert said in result.stderr


def test_an_eval_with_judge_batch_judges_after_generation_through_one_batch(
    tmp_path: Path, tiny_model_dir: Path, c2eval_file: Path
) -> None:
    server = FakeOpenAIServer(answer=says_yes_to_cannot)
    try:
        db = tmp_path / "s.db"
        spec = f"openai:gpt-4o@{server.url}"
        result = run_ccapp(
            *("eval", "--model", str(tiny_model_dir), "--data", str(c2eval_file), "--limit", "2"),
            *("--k", "10,20", "--paths", "3", "--max-new-tokens", "6", "--device", "cpu"),
            *("--judge", spec, "--judge-batch", "--db", str(db), "--json"),
        )
        assert result.returncode == 0, result.stderr
        assert "cost estimate for openai:gpt-4o" in result.stderr
        # Generation first, then one batch over what the first direct call left.
        (created,) = [r for r in server.requests if r.get("POST", "").endswith("/batches")]
        assert created["endpoint"] == "/v1/chat/completions"
        assert len([r for r in server.requests if "messages" in r]) == 1
        with Store.open(db) as store:
            run_id = json.loads(result.stdout.splitlines()[-1])["run_id"]
            labels = [
                r["label"]
                for r in store.rows(
                    "SELECT v.label FROM verdicts v JOIN continuations t ON t.id = "
                    "v.continuation_id WHERE t.run_id = ? AND v.judge = ?",
                    [run_id, spec],
                )
            ]
        assert len(labels) == 2 * 2 * 3 and set(labels) <= {"yes", "no"}
    finally:
        server.close()
