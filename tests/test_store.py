"""The store: migrations, pragmas, runs, cascades and concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from ccapp.errors import UserError
from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store.schema import LATEST_VERSION

V1_TABLES = {"runs", "items", "cells", "continuations", "verdicts"}
V2_TABLES = {"syn_groups", "syn_responses", "train_log"}
ALL_INDEXES = {
    "runs_created",
    "runs_parent",
    "cells_item",
    "continuations_run",
    "verdicts_judge",
    "syn_groups_run",
}


def test_a_new_store_is_at_the_latest_version_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        assert store.version == LATEST_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        assert set(store.tables()) >= V1_TABLES | V2_TABLES
        assert set(store.indexes()) >= ALL_INDEXES


def test_a_v1_store_upgrades_in_place_keeping_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Store.open(path, migrate=False) as old:
        old.migrate(target=1)
        assert old.version == 1
        assert set(old.tables()) & V2_TABLES == set()
        with old.write() as db:  # as ccapp at schema 1 wrote a run
            run_id = db.execute(
                "INSERT INTO runs (kind, status, model, config, ccapp_version, created_at, updated_at) "
                "VALUES ('eval', 'done', 'tiny', '{\"k\": [10]}', '0.0.1', 'then', 'then')"
            ).lastrowid
    with Store.open(path) as store:
        assert store.version == LATEST_VERSION
        assert set(store.tables()) >= V1_TABLES | V2_TABLES
        assert set(store.indexes()) >= ALL_INDEXES
        views = {r["name"] for r in store.rows("SELECT name FROM sqlite_master WHERE type='view'")}
        assert "preference_pairs" in views
        upgraded = runs.get_run(store, run_id)
        assert upgraded.model == "tiny" and upgraded.config == {"k": [10]} and upgraded.pid is None
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_cells_stored_before_prefill_token_counts_open_with_none(tmp_path: Path) -> None:
    from ccapp.store import evals as rows_store

    path = tmp_path / "old.db"
    with Store.open(path, migrate=False) as old:
        old.migrate(target=4)
        with old.write() as db:  # a run as ccapp at schema 4 stored one
            run_id = db.execute(
                "INSERT INTO runs (kind, status, config, ccapp_version, created_at, updated_at) "
                "VALUES ('eval', 'done', '{\"ks\": [10]}', '0.1', '2026-01-01T00:00:00Z', "
                "'2026-01-01T00:00:00Z')"
            ).lastrowid
        run = runs.get_run(old, run_id)
        (item,) = rows_store.insert_items(old, run.id, [(0, 1, "How?", "First, …", None)])
        with old.write() as db:  # as ccapp at schema 4 wrote a cell
            db.execute(
                "INSERT INTO cells (run_id, item_id, k, opener, prefill, rendered_prompt, "
                "prompt_tokens, short) VALUES (?, ?, 10, 'Sure.', 'Sure. First', 'p', 9, 0)",
                [run.id, item.id],
            )
    with Store.open(path) as store:
        assert store.version == LATEST_VERSION
        (cell,) = rows_store.get_cells(store, run.id)
        assert cell.prefill == "Sure. First" and cell.prefill_tokens is None
        rows_store.insert_cells(
            store, run.id, [rows_store.NewCell(item.id, 20, "Sure.", "Sure. F", "p", 9, False, 4)]
        )
        assert [c.prefill_tokens for c in rows_store.get_cells(store, run.id)] == [None, 4]
        assert runs.get_run(store, run.id).seconds_running == 0.0  # not counted back then


def test_a_store_from_a_newer_ccapp_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 3}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(UserError, match=r"newer than this ccapp knows.*upgrade ccapp"):
        Store.open(path)
    assert path.read_bytes() == before


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(UserError, match=r"notes.db.*cannot open the store.*--db"):
        Store.open(path)


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a folder"):
        Store.open(tmp_path)


def test_runs_round_trip_as_typed_records(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        first = runs.create_run(
            store,
            RunKind.EVAL,
            {"paths": 3, "k": [10, 20]},
            model="tiny",
            data="c2-eval",
            judge="heuristic",
        )
        assert first.status is RunStatus.RUNNING
        assert first.config == {"k": [10, 20], "paths": 3}
        assert first.fingerprint == runs.fingerprint({"k": [10, 20], "paths": 3})
        child = runs.create_run(store, RunKind.SYN, {}, parent_id=first.id)
        done = runs.set_status(store, first.id, RunStatus.DONE, metrics={"corr_mean": 0.25})
        assert done.finished_at is not None and done.corr_mean == 0.25
        assert [r.id for r in runs.list_runs(store)] == [child.id, first.id]
        assert [r.id for r in runs.list_runs(store, kind=RunKind.SYN)] == [child.id]
        assert runs.get_run(store, child.id).parent_id == first.id


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert runs.fingerprint({"a": 1, "b": 2}) == runs.fingerprint({"b": 2, "a": 1})
    assert runs.fingerprint({"a": 1}) != runs.fingerprint({"a": 2})


def test_deleting_a_run_deletes_what_it_produced(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = runs.create_run(store, RunKind.EVAL, {})
        other = runs.create_run(store, RunKind.EVAL, {}, parent_id=run.id)
        with store.write() as db:
            item = db.execute(
                "INSERT INTO items (run_id, idx, request, harmful_response) VALUES (?, 0, 'q', 'a')",
                [run.id],
            ).lastrowid
            cell = db.execute(
                "INSERT INTO cells (run_id, item_id, k, opener, prefill, rendered_prompt, "
                "prompt_tokens) VALUES (?, ?, 10, 'Sure.', 'Sure. a', '<p>', 5)",
                [run.id, item],
            ).lastrowid
            cont = db.execute(
                "INSERT INTO continuations (run_id, cell_id, path, text, new_tokens, "
                "finish_reason, created_at) VALUES (?, ?, 0, 'x', 1, 'eos', 'now')",
                [run.id, cell],
            ).lastrowid
            db.execute(
                "INSERT INTO verdicts (continuation_id, judge, label, created_at) "
                "VALUES (?, 'heuristic', 'no', 'now')",
                [cont],
            )
        runs.delete_run(store, run.id)
        for table in ("items", "cells", "continuations", "verdicts"):
            assert store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        assert runs.get_run(store, other.id).parent_id is None
        with pytest.raises(UserError, match=f"no run {run.id}"):
            runs.get_run(store, run.id)


def test_one_cell_path_is_stored_once(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = runs.create_run(store, RunKind.EVAL, {})
        with store.write() as db:
            item = db.execute(
                "INSERT INTO items (run_id, idx, request, harmful_response) VALUES (?, 0, 'q', 'a')",
                [run.id],
            ).lastrowid
            cell = db.execute(
                "INSERT INTO cells (run_id, item_id, k, opener, prefill, rendered_prompt, "
                "prompt_tokens) VALUES (?, ?, 10, 'Sure.', 'p', 'r', 5)",
                [run.id, item],
            ).lastrowid
        insert = (
            "INSERT INTO continuations (run_id, cell_id, path, text, new_tokens, "
            "finish_reason, created_at) VALUES (?, ?, 0, 'x', 1, 'eos', 'now')"
        )
        with store.write() as db:
            db.execute(insert, [run.id, cell])
        with pytest.raises(sqlite3.IntegrityError), store.write() as db:
            db.execute(insert, [run.id, cell])


def test_a_failed_write_rolls_back_whole(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        with pytest.raises(RuntimeError), store.write():
            runs.create_run(store, RunKind.EVAL, {})
            raise RuntimeError("crash mid-transaction")
        assert runs.list_runs(store) == []


def _writer(path: str, count: int) -> None:
    with Store.open(path) as store:
        for i in range(count):
            runs.create_run(store, RunKind.EVAL, {"i": i})


def test_two_processes_writing_at_once_never_see_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Store.open(path).close()
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(path), 150)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    with Store.open(path) as store:
        assert len(runs.list_runs(store)) == 300


def test_opening_a_store_keeps_the_locks_other_connections_of_this_process_hold(
    tmp_path: Path,
) -> None:
    """Closing any descriptor of a database file drops every POSIX lock the process holds on
    it (SQLite's "how to corrupt" list, 2.2). The app opens stores from several threads while
    one reads; if opening peeked at the file itself, a writer in another process could slip
    under that read and the reader would see a "malformed" database."""
    import subprocess
    import sys

    path = tmp_path / "s.db"
    reader = Store.open(path)
    reader.conn.execute("BEGIN")
    reader.conn.execute("SELECT count(*) FROM runs").fetchone()  # holds its read lock
    Store.open(path).close()  # another thread of the app opens the same store
    other_process = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0);"
            "print(c.execute('PRAGMA journal_mode = DELETE').fetchone()[0])",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert "database is locked" in other_process.stderr, other_process.stdout
    reader.conn.execute("COMMIT")
    reader.close()


def test_a_run_counts_the_time_it_ran_and_not_its_pauses(tmp_path: Path) -> None:
    """`v` on a train run says how long an eval like the last one takes: a run paused for an
    hour between two minutes of work took two minutes, not an hour."""
    from ccapp.store.train import eval_cost

    def started_ago(run_id: int, seconds: int) -> None:
        with store.write() as db:
            db.execute(
                "UPDATE runs SET running_since = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?) "
                "WHERE id = ?",
                [f"-{seconds} seconds", run_id],
            )

    with Store.open(tmp_path / "s.db") as store:
        run = runs.create_run(store, RunKind.EVAL, {})
        started_ago(run.id, 30)
        runs.set_status(store, run.id, RunStatus.PAUSED)
        with store.write() as db:  # an hour on pause
            db.execute("UPDATE runs SET created_at = '2026-01-01T00:00:00Z' WHERE id = ?", [run.id])
        runs.claim(store, run.id)
        started_ago(run.id, 20)
        done = runs.set_status(store, run.id, RunStatus.DONE)
        assert 49 <= done.seconds_running <= 52
        assert 49 <= (eval_cost(store, run.id).seconds or 0) <= 52


def test_deleting_asks_with_what_goes_and_what_stays(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        trained = runs.create_run(store, RunKind.TRAIN, {"output": "/models/dpo"}, model="tiny")
        made = runs.create_run(store, RunKind.EVAL, {}, model="/models/dpo", parent_id=trained.id)
        question = runs.deletion_question(store, runs.get_run(store, trained.id))
        assert question.startswith(f"Delete run {trained.id} (train, tiny) with its training log")
        assert "The model folder /models/dpo stays on disk." in question
        assert f"Run {made.id}, made from it, keeps its results but loses this link." in question
        lone = runs.deletion_question(store, runs.get_run(store, made.id))
        assert "stays on disk" not in lone and "made from it" not in lone
