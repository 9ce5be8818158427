"""A store that cannot be written: a full disk, a read-only file or folder.

The job stops with one line that says what is wrong and what to do (no traceback, exit not
0), the store passes SQLite's checks, and once there is room again (or write permission)
the same run resumes and stores exactly what an uninterrupted run stores.

A full disk is the child's file-size limit (RLIMIT_FSIZE): a write past it fails with
EFBIG as a write to a full disk fails with ENOSPC, and no root or tmpfs is needed. A
read-only store is a read-only bind mount of its folder in a user namespace when the tests
run as root (root writes through any chmod), else chmod.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from faultkit import EvalJob, check_store, eval_content, judged_text, label_for, only_run, rows

from ccapp.engines.c2eval.evaluate import Evaluation
from ccapp.engines.events import Event, Progress
from ccapp.engines.generation.types import Cancelled
from ccapp.store import Store

from fake_openai import FakeOpenAIServer
from helpers import run_ccapp


def file_size_limit(limit: int) -> Callable[[], None]:
    """For the child: files stop growing at `limit` bytes, like a disk that fills up."""

    def apply() -> None:
        # Ignored, SIGXFSZ no longer kills the process: the write fails with EFBIG instead.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def run_limited(args: list[str], limit: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccapp", *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=file_size_limit(limit),
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *phrases: str) -> str:
    """Exit code not 0, no traceback, and stderr is one `ccapp: error:` line."""
    assert result.returncode > 0, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ccapp: error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def resume_in_process(db: Path, run_id: int) -> None:
    """Finish the run as `ccapp eval --resume` does, in this process (torch is loaded here
    already; the kill tests resume through the command line, twenty times)."""
    with Store.open(db) as store:
        assert Evaluation(store).resume(run_id, {}).status.value == "done"
    check_store(db)


# --- a full disk ---------------------------------------------------------------------------


def test_a_full_disk_stops_an_eval_with_one_line_and_the_run_resumes(
    eval_job: EvalJob, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    Store.open(db).close()  # the schema is written; the job's own writes start from here
    # Room for about half of what the run writes: it fails mid-way, not at the start.
    full = run_limited(eval_job.start_args(db), eval_job.wal_bytes // 2)
    assert_one_line_error(full, "could not be written", "ccapp eval --resume")
    check_store(db)
    run_id = only_run(db)
    assert run_id is not None
    stored = len(eval_content(db, run_id)["continuations"])
    assert 0 < stored < eval_job.total

    resume_in_process(db, run_id)
    assert eval_content(db, run_id) == eval_job.expected


@pytest.fixture
def judge_server() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(
        answer=lambda body, i: "Yes" if label_for(judged_text(body)) == "yes" else "No"
    )
    yield server
    server.close()


def test_a_full_disk_stops_a_judge_with_one_line_and_judging_resumes(
    eval_job: EvalJob, judge_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    run_id = eval_job.copy_of_reference(db)
    spec = f"openai:m@{judge_server.url}"
    args = ["judge", str(run_id), "--judge", spec, "--judge-concurrency", "1", "--db", str(db)]
    # The store file is closed (no log yet): the log may grow to a few chunks of verdicts.
    full = run_limited([*args, "--events", "jsonl"], 48 * 1024)
    assert_one_line_error(full, "could not be written", f"ccapp judge {run_id} --judge {spec}")
    check_store(db)
    [(judged,)] = rows(db, "SELECT count(*) FROM verdicts WHERE judge = ?", spec)
    assert 0 < judged < eval_job.total

    again = run_ccapp(*args, "--json")
    assert again.returncode == 0, again.stderr
    check_store(db)
    labels = rows(
        db,
        "SELECT c.text, v.label FROM verdicts v JOIN continuations c "
        "ON c.id = v.continuation_id WHERE v.judge = ?",
        spec,
    )
    assert len(labels) == eval_job.total
    assert all(label == label_for(text) for text, label in labels)


# --- a read-only store ---------------------------------------------------------------------


@contextmanager
def read_only(folder: Path) -> Iterator[list[str]]:
    """Make `folder` read-only for ccapp; yields the prefix that runs a command so."""
    if os.geteuid() != 0:
        files = [folder, *folder.iterdir()]
        modes = {path: path.stat().st_mode for path in files}
        for path in files:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield []
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    prefix = ["unshare", "--map-root-user", "--mount", "sh", "-c"]
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    probe = subprocess.run([*prefix, script, str(folder), "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root without user namespaces: {probe.stderr.decode()}")
    yield [*prefix, script, str(folder)]


def paused_run(eval_job: EvalJob, db: Path, batches: int) -> int:
    """A run stopped (Ctrl-C) after `batches` batches, as the app or CLI leaves one."""
    cancel = threading.Event()

    class StopAfter:
        wants_tokens = False

        def __init__(self) -> None:
            self.seen = 0

        def emit(self, event: Event) -> None:
            if isinstance(event, Progress):
                self.seen += 1
                if self.seen == batches:
                    cancel.set()

        def tokens(self, deltas: Any) -> None:
            pass

        def close(self) -> None:
            pass

    with Store.open(db) as store:
        evaluation = Evaluation(store, StopAfter(), cancel)
        with pytest.raises(Cancelled):
            evaluation.start(eval_job.config())
        assert evaluation.run is not None
        return evaluation.run.id


def test_a_read_only_store_is_refused_with_one_line_and_changes_nothing(
    eval_job: EvalJob, tmp_path: Path
) -> None:
    folder = tmp_path / "store"
    db = folder / "s.db"
    run_id = paused_run(eval_job, db, batches=3)
    assert sorted(p.name for p in folder.iterdir()) == ["s.db"]  # closed: no -wal, no -shm
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    with read_only(folder) as prefix:
        for args in (
            eval_job.resume_args(db, run_id),
            ["judge", str(run_id), "--judge", "heuristic", "--force", "--db", str(db)],
            ["runs", "list", "--db", str(db)],
        ):
            result = subprocess.run(
                [*prefix, sys.executable, "-m", "ccapp", *args],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert_one_line_error(result, "read-only", "--db")
    assert sorted(p.name for p in folder.iterdir()) == ["s.db"]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    check_store(db)

    resume_in_process(db, run_id)
    assert eval_content(db, run_id) == eval_job.expected
