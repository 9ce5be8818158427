"""`ccapp eval` end to end on the tiny model: store, cancel and resume, events, errors.

kill -9 at random moments, a full disk and concurrent writers: tests/faults/.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ccapp.engines.c2eval.evaluate import EvalConfig, Evaluation, plan_batches
from ccapp.engines.events import Event, Progress
from ccapp.engines.generation.types import Cancelled
from ccapp.errors import UserError
from ccapp.store import RunStatus, Store, runs
from ccapp.store import evals as rows_store

from helpers import run_ccapp


def eval_args(model: Path, data: Path, db: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--model",
        str(model),
        "--data",
        str(data),
        "--db",
        str(db),
        "--limit",
        "6",
        "--k",
        "10,20",
        "--paths",
        "3",
        "--batch-size",
        "6",
        "--device",
        "cpu",
        *extra,
    ]


def test_acceptance_run_stores_180_continuations_with_verdicts(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    result = run_ccapp(
        "eval",
        "--model",
        str(tiny_model_dir),
        "--data",
        str(c2eval_file),
        "--limit",
        "20",
        "--k",
        "10,20,40",
        "--paths",
        "3",
        "--judge",
        "heuristic",
        "--json",
        "--db",
        str(db),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["kind"] == "eval" and summary["status"] == "done"
    metrics = summary["metrics"]
    assert set(metrics["corr"]) == {"10", "20", "40"} and set(metrics["ci95"]) == {
        "10",
        "20",
        "40",
        "mean",
    }
    assert metrics["judge"] == "heuristic" and metrics["n"] == {"10": 60, "20": 60, "40": 60}
    with Store.open(db) as store:
        run = runs.get_run(store, summary["run_id"])
        assert run.status is RunStatus.DONE and run.metrics == metrics
        cells = rows_store.get_cells(store, run.id)
        assert len(cells) == 60
        assert all(c.rendered_prompt.endswith(c.prefill) for c in cells)
        assert all(len(c.prefill.split()) == c.k or c.short for c in cells)
        conts = rows_store.continuations(store, run.id)
        assert len(conts) == 180 and all(set(c.verdicts) == {"heuristic"} for c in conts)
        assert store.conn.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 180


def test_the_same_seed_gives_the_same_continuations(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    texts = []
    for seed in (0, 0, 1):
        with Store.open(tmp_path / f"s{len(texts)}.db") as store:
            run = Evaluation(store).start(
                EvalConfig(
                    str(tiny_model_dir),
                    str(c2eval_file),
                    ks=(10, 20),
                    paths=3,
                    limit=4,
                    seed=seed,
                    batch_size=5,
                    device="cpu",
                )
            )
            texts.append([c.text for c in rows_store.continuations(store, run.id)])
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_cancel_pauses_and_resume_finishes_exactly_like_an_uninterrupted_run(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    config = EvalConfig(
        str(tiny_model_dir),
        str(c2eval_file),
        ks=(10, 20),
        paths=3,
        limit=6,
        batch_size=6,
        device="cpu",
    )
    with Store.open(tmp_path / "whole.db") as store:
        whole = Evaluation(store).start(config)
        expected = [
            (c.item_idx, c.k, c.path, c.text) for c in rows_store.continuations(store, whole.id)
        ]

    class CancelAfterTwoBatches:
        def __init__(self) -> None:
            self.cancel, self.batches = threading.Event(), 0

        def emit(self, event: Event) -> None:
            if isinstance(event, Progress):
                self.batches += 1
                if self.batches == 2:
                    self.cancel.set()

        def tokens(self, deltas: Any) -> None:
            pass

        def close(self) -> None:
            pass

    sink = CancelAfterTwoBatches()
    with Store.open(tmp_path / "split.db") as store:
        evaluation = Evaluation(store, sink, sink.cancel)
        with pytest.raises(Cancelled):
            evaluation.start(config)
        assert evaluation.run is not None
        paused = runs.get_run(store, evaluation.run.id)
        assert paused.status is RunStatus.PAUSED
        assert len(rows_store.continuations(store, paused.id)) == 12
        done = Evaluation(store).resume(paused.id, {})
        assert done.status is RunStatus.DONE
        got = [(c.item_idx, c.k, c.path, c.text) for c in rows_store.continuations(store, done.id)]
    assert got == expected
    assert done.metrics == whole.metrics


def test_sigterm_pauses_the_run_with_exit_130(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccapp",
            *eval_args(tiny_model_dir, c2eval_file, db, "--events", "jsonl", "--json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        if json.loads(line)["event"] == "progress":
            child.send_signal(signal.SIGTERM)
            break
    rest, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    summary = json.loads(rest.strip().splitlines()[-1])
    assert summary["status"] == "paused"
    assert f"ccapp eval --resume {summary['run_id']}" in err
    with Store.open(db) as store:
        assert runs.get_run(store, summary["run_id"]).status is RunStatus.PAUSED


def test_events_stream_tokens_then_each_continuation_then_the_finish(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    result = run_ccapp(
        *eval_args(tiny_model_dir, c2eval_file, tmp_path / "s.db", "--events", "jsonl", "--json")
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    events = [json.loads(line) for line in lines[:-1]]
    kinds = [e["event"] for e in events]
    # The first word comes before torch is imported (the app shows it while it waits), then
    # the model's loading phases.
    assert events[0] == {
        "event": "log",
        "run_id": None,
        "level": "info",
        "message": "starting: loading torch and transformers…",
    }
    assert kinds[1] == "model_loading" and "run_started" in kinds and kinds[-1] == "run_finished"
    started = events[kinds.index("run_started")]
    assert started["v"] == 1 and started["totals"] == {
        "requests": 6,
        "cells": 12,
        "continuations": 36,
        "todo": 36,
    }
    done = [e for e in events if e["event"] == "continuation_done"]
    assert len(done) == 36 and all(e["verdict"]["judge"] == "heuristic" for e in done)
    streamed: dict[tuple[int, int], str] = defaultdict(str)
    for e in events:
        if e["event"] == "tokens":
            for cell, path, text in e["deltas"]:
                streamed[(cell, path)] += text
    assert {(e["cell_id"], e["path"]): e["text"] for e in done} == dict(streamed)
    progress = [e["done"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 36
    assert json.loads(lines[-1])["status"] == "done"


def test_resuming_with_other_settings_is_refused_naming_them(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        run = runs.create_run(
            store,
            runs.RunKind.EVAL,
            {
                "model": str(tiny_model_dir),
                "data": str(c2eval_file),
                "ks": [10],
                "paths": 3,
                "seed": 0,
            },
        )
        runs.set_status(store, run.id, RunStatus.PAUSED)
    result = run_ccapp(
        "eval", "--resume", str(run.id), "--paths", "5", "--seed", "0", "--db", str(db)
    )
    assert result.returncode == 2
    assert "--paths (run: 3, given: 5)" in result.stderr and "--seed" not in result.stderr


def test_a_done_run_cannot_be_resumed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = runs.create_run(store, runs.RunKind.EVAL, {})
        runs.set_status(store, run.id, RunStatus.DONE)
        with pytest.raises(UserError, match="already done"):
            Evaluation(store).resume(run.id, {})


def test_short_responses_are_counted(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    from ccapp.engines.data import load_dataset_rows
    from ccapp.engines.phrases import OPENERS, pick

    rows = load_dataset_rows(str(c2eval_file)).rows[:40]
    expected = sum(
        len(f"{pick(OPENERS, 0, 'opener', r.index)} {r.harmful_response}".split()) < 80
        for r in rows
    )
    assert expected > 0
    with Store.open(tmp_path / "s.db") as store:
        run = Evaluation(store).start(
            EvalConfig(
                str(tiny_model_dir),
                str(c2eval_file),
                ks=(80,),
                paths=1,
                limit=40,
                max_new_tokens=2,
                device="cpu",
            )
        )
    assert run.metrics["short_cells"] == expected


def test_token_units_prefill_k_model_tokens(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with Store.open(tmp_path / "s.db") as store:
        run = Evaluation(store).start(
            EvalConfig(
                str(tiny_model_dir),
                str(c2eval_file),
                ks=(5,),
                paths=1,
                limit=3,
                unit="tokens",
                max_new_tokens=2,
                device="cpu",
            )
        )
        cells = rows_store.get_cells(store, run.id)
    for cell in cells:
        encoded = tokenizer(cell.prefill, add_special_tokens=False, return_offsets_mapping=True)
        after_opener = [s for s, e in encoded["offset_mapping"] if s >= len(cell.opener)]
        assert len(after_opener) == 5  # exactly k tokens, the opener excluded
        # The count stored per cell: the prefill's tokens in the prompt the model saw.
        assert cell.prefill_tokens == len(encoded["input_ids"])


def test_batches_are_fixed_by_settings_and_keep_a_cells_paths_together() -> None:
    from ccapp.store.records import Cell

    cells = [
        Cell(i, 10, "o", "p", "r", tokens, False, id=i, item_idx=i)
        for i, tokens in enumerate([30, 10, 20])
    ]
    batches = plan_batches(cells, paths=4, rows_per_batch=6, seed=0)
    assert [[(c.id, list(r)) for c, r in b.slices] for b in batches] == [
        [(1, [0, 1, 2, 3]), (2, [0, 1])],
        [(2, [2, 3]), (0, [0, 1, 2, 3])],
    ]
    assert [b.seed for b in batches] == [b.seed for b in plan_batches(cells, 4, 6, 0)]
    assert batches[0].seed != plan_batches(cells, 4, 6, 1)[0].seed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model-anywhere"], "unknown model"),
        (["--data", "/nonexistent/rows.jsonl"], "no such file"),
        (["--k", "10,x"], "not a list of numbers"),
        (["--k", "0,10"], "positive numbers"),
        (["--device", "cuda:0"], "cuda:0 is not available"),
        (["--device", "gpu"], "invalid device"),
        (["--paths", "0"], "--paths"),
        (["--judge", "oracle"], "unknown judge"),
        (["--engine", "openai"], "--base-url"),
    ],
)
def test_bad_input_is_exit_2_with_a_one_line_fix(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    base = {"--model": str(tiny_model_dir), "--data": str(c2eval_file)}
    for flag in ("--model", "--data"):
        if flag in args:
            base.pop(flag)
    argv = [
        "eval",
        *[x for kv in base.items() for x in kv],
        "--limit",
        "2",
        "--db",
        str(tmp_path / "s.db"),
        *args,
    ]
    result = run_ccapp(*argv)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.startswith(("ccapp: error", "usage", "ccapp eval: error"))
    ]
    assert errors, result.stderr


# --- what the first review found -----------------------------------------------------------


def test_a_template_that_fails_for_one_request_leaves_no_half_run(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    import shutil

    from ccapp.engines.data import load_dataset_rows

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    third = load_dataset_rows(str(c2eval_file)).rows[2].request.split()[0]
    template = (broken / "chat_template.jinja").read_text()
    (broken / "chat_template.jinja").write_text(
        "{% for m in messages %}{% if m['content'].startswith('" + third + "') %}"
        "{{ raise_exception('no') }}{% endif %}{% endfor %}" + template
    )
    db = tmp_path / "s.db"
    result = run_ccapp(
        "eval", "--model", str(broken), "--data", str(c2eval_file), "--limit", "5", "--db", str(db)
    )
    assert result.returncode == 2 and "cannot render" in result.stderr
    with Store.open(db) as store:
        assert runs.list_runs(store) == []  # nothing to resume into an empty "done"


def test_a_cancel_during_model_loading_creates_no_run(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    cancel = threading.Event()
    cancel.set()
    with Store.open(tmp_path / "s.db") as store:
        with pytest.raises(Cancelled):
            Evaluation(store, cancel=cancel).start(
                EvalConfig(str(tiny_model_dir), str(c2eval_file), limit=2, device="cpu")
            )
        assert runs.list_runs(store) == []


def test_a_run_with_a_relative_model_folder_resumes_from_anywhere(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    config = EvalConfig(
        "./model", str(c2eval_file), ks=(10,), paths=2, limit=4, batch_size=2, device="cpu"
    )

    class StopAfterFirst:
        wants_tokens = False

        def __init__(self) -> None:
            self.cancel = threading.Event()

        def emit(self, event: Event) -> None:
            if isinstance(event, Progress):
                self.cancel.set()

        def tokens(self, deltas: Any) -> None:
            pass

        def close(self) -> None:
            pass

    sink = StopAfterFirst()
    with Store.open(tmp_path / "s.db") as store:
        evaluation = Evaluation(store, sink, sink.cancel)
        with pytest.raises(Cancelled):
            evaluation.start(config)
        run_id = evaluation.run.id if evaluation.run else -1
    monkeypatch.chdir(tmp_path.parent)
    result = run_ccapp("eval", "--resume", str(run_id), "--db", str(tmp_path / "s.db"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "done"


def test_deleting_a_run_that_is_still_running_is_refused(tmp_path: Path) -> None:
    import socket

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store.open(tmp_path / "s.db") as store:
            run = runs.create_run(store, runs.RunKind.EVAL, {})
            with store.write() as db:
                db.execute(
                    "UPDATE runs SET pid = ?, host = ? WHERE id = ?",
                    [sleeper.pid, socket.gethostname(), run.id],
                )
        result = run_ccapp("runs", "delete", str(run.id), "--yes", "--db", str(tmp_path / "s.db"))
        assert result.returncode == 2 and f"running in process {sleeper.pid}" in result.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    assert (
        run_ccapp("runs", "delete", str(run.id), "--yes", "--db", str(tmp_path / "s.db")).returncode
        == 0
    )


def test_an_error_before_the_run_exists_is_an_event_too(c2eval_file: Path, tmp_path: Path) -> None:
    result = run_ccapp(
        "eval",
        "--model",
        "nobody-here/no-such-model",
        "--data",
        str(c2eval_file),
        "--events",
        "jsonl",
        "--db",
        str(tmp_path / "s.db"),
    )
    assert result.returncode == 2
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["event"] == "error" and "cannot download" in last["message"]


def test_lenient_skips_and_short_k_are_reported(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    lines = [*c2eval_file.read_text().splitlines()[:4], "not json"]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(lines) + "\n")
    result = run_ccapp(
        "eval",
        "--model",
        str(tiny_model_dir),
        "--data",
        str(data),
        "--lenient",
        "--k",
        "3",
        "--paths",
        "1",
        "--max-new-tokens",
        "2",
        "--events",
        "jsonl",
        "--db",
        str(tmp_path / "s.db"),
    )
    assert result.returncode == 0, result.stderr
    logs = [
        json.loads(line)["message"]
        for line in result.stdout.splitlines()
        if json.loads(line)["event"] == "log"
    ]
    assert any("--lenient skipped rows: 1 not JSON" in m for m in logs)
    assert any("hold only the opener" in m for m in logs)
