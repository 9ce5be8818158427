"""Two jobs write one store while the app reads it: nobody sees "database is locked".

An eval (a new run) and a judge (on another run) write the same file at the same time, each
from its own `python -m ccapp` process, while the real Textual app re-reads its History
screen as fast as it can. Both jobs finish cleanly (exit 0, nothing on stderr), every
read of the app succeeds, and what the jobs stored is what they store alone.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from faultkit import EvalJob, check_store, eval_content, judged_text, label_for, rows
from textual.widgets import DataTable
from textual.worker import WorkerCancelled

from ccapp.app import CcappApp
from ccapp.engines.devices import GIB, Device
from ccapp.screens.history import HistoryScreen

from fake_openai import FakeOpenAIServer


async def cpu_probe() -> list[Device]:
    return [Device("cpu", "cpu", "Test CPU", 16 * GIB, 8 * GIB, cores=2)]


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A job whose stdout (events) and stderr go to files the test reads as it goes."""
    with log.with_suffix(".out").open("wb") as out, log.with_suffix(".err").open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "ccapp", *args], stdout=out, stderr=err)


async def test_an_eval_and_a_judge_write_while_the_app_reads_and_no_lock_reaches_anyone(
    eval_job: EvalJob, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    judged_run = eval_job.copy_of_reference(db)
    generated = {"rows": 0}  # continuations the eval has committed, as its events say
    pace = threading.Condition()
    asked = itertools.count()

    def answer(body: dict[str, Any], index: int) -> str:
        """Call n waits until the eval has committed n - 4 rows: the judge keeps pace with
        generation, so that their writes interleave however fast this machine is."""
        number = next(asked)
        with pace:
            pace.wait_for(lambda: generated["rows"] >= number - 4, timeout=60)
        return "Yes" if label_for(judged_text(body)) == "yes" else "No"

    server = FakeOpenAIServer(answer=answer)
    spec = f"openai:m@{server.url}"
    app = CcappApp(db, probe_devices=cpu_probe)
    try:
        async with app.run_test(size=(120, 50)) as pilot:
            await pilot.press("f3")
            history = app.screen
            assert isinstance(history, HistoryScreen)
            judge_args = ["judge", str(judged_run), "--judge", spec, "--judge-concurrency", "1"]
            judging = start([*judge_args, "--events", "jsonl", "--db", str(db)], tmp_path / "judge")
            # The judge first, until its first verdicts: from then on its calls wait for the
            # eval's rows, so its writes must fall while the eval writes, on any machine.
            judge_out = tmp_path / "judge.out"
            while b'"event": "verdict"' not in judge_out.read_bytes() and judging.poll() is None:
                await history.load(history.db_path).wait()
                await pilot.pause(0.05)
            evaluating = start(eval_job.start_args(db), tmp_path / "eval")
            reads, judged_meanwhile, before = 0, 0, None
            while evaluating.poll() is None or judging.poll() is None:
                try:
                    await history.load(history.db_path).wait()  # raises if the read failed
                    reads += 1
                except WorkerCancelled:  # the screen's own refresh took over; fine
                    pass
                events = (tmp_path / "eval.out").read_bytes()
                rows_now = events.count(b'"continuation_done"')
                with pace:
                    generated["rows"] = rows_now if evaluating.poll() is None else 10**9
                    pace.notify_all()
                verdicts = (tmp_path / "judge.out").read_bytes().count(b'"event": "verdict"')
                generating = rows_now > 0 and b'"run_finished"' not in events
                if generating and before is not None:
                    judged_meanwhile += verdicts - before  # judged while the eval wrote
                before = verdicts if generating else None
                await pilot.pause(0.02)
            await history.load(history.db_path).wait()
            await pilot.pause()
            table = history.query_one("#history-runs", DataTable)
            assert [table.get_row_at(i)[2] for i in range(table.row_count)] == ["done", "done"]
    finally:
        server.close()

    for job, name in ((evaluating, "eval"), (judging, "judge")):
        assert job.returncode == 0, (tmp_path / f"{name}.err").read_text()
        assert (tmp_path / f"{name}.err").read_text() == ""
    assert reads > 10 and judged_meanwhile >= 1, (reads, judged_meanwhile)
    check_store(db)
    assert eval_content(db, judged_run + 1) == eval_job.expected
    labels = rows(
        db,
        "SELECT c.text, v.label FROM verdicts v JOIN continuations c ON c.id = v.continuation_id "
        "WHERE v.judge = ? AND c.run_id = ?",
        spec,
        judged_run,
    )
    assert len(labels) == eval_job.total and all(label == label_for(t) for t, label in labels)


def test_processes_that_open_a_new_store_at_once_all_get_it(tmp_path: Path) -> None:
    """The app's first screen and its refresh, or two jobs started together, open a store
    that does not exist yet: switching it to WAL takes a lock SQLite's busy handler does not
    wait for, and one of them failed with "database is locked" (about 1 in 75 tries)."""
    import threading

    from ccapp.store import Store, runs

    failures: list[str] = []

    def open_and_read(path: Path, start: threading.Barrier) -> None:
        try:
            start.wait()
            with Store.open(path) as store:
                runs.list_runs(store)
        except Exception as exc:
            failures.append(repr(exc))

    for attempt in range(150):
        path = tmp_path / f"new-{attempt}.db"
        start = threading.Barrier(4)
        openers = [threading.Thread(target=open_and_read, args=(path, start)) for _ in range(4)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert failures == []
