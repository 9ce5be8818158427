"""Batch API jobs of a judge on a run (table judge_batches): what was uploaded, which batch
runs it, and how far it got, written as soon as each step happens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ccapp.store.db import Store, utc_now

DONE_STATES = ("stored", "failed")  # nothing left to wait for or to read


@dataclass(frozen=True)
class StoredBatch:
    id: int
    run_id: int
    judge: str
    input_file_id: str
    batch_id: str | None  # None: uploaded, the batch not created yet
    state: str
    requests: int
    settings: dict[str, Any]
    completed: int
    failed: int
    output_file_id: str | None
    error_file_id: str | None
    error: str | None


def _batch(r: dict[str, Any]) -> StoredBatch:
    return StoredBatch(
        r["id"],
        r["run_id"],
        r["judge"],
        r["input_file_id"],
        r["batch_id"],
        r["state"],
        r["requests"],
        json.loads(r["settings"]),
        r["completed"],
        r["failed"],
        r["output_file_id"],
        r["error_file_id"],
        r["error"],
    )


def add_upload(
    store: Store,
    run_id: int,
    judge: str,
    input_file_id: str,
    requests: int,
    settings: dict[str, Any],
) -> StoredBatch:
    """A requests file is on the server: remember it before a batch is asked for, so that a
    kill between the two reuses the file instead of uploading (and paying) again."""
    now = utc_now()
    with store.write() as db:
        row_id = db.conn.execute(
            "INSERT INTO judge_batches (run_id, judge, input_file_id, state, requests, settings, "
            "created_at, updated_at) VALUES (?, ?, ?, 'uploaded', ?, ?, ?, ?)",
            [run_id, judge, input_file_id, requests, json.dumps(settings), now, now],
        ).lastrowid
    return get(store, int(row_id or 0))


def update(store: Store, row_id: int, **fields: Any) -> StoredBatch:
    """Set columns of one batch row (batch_id, state, counts, file ids, error)."""
    allowed = {
        "batch_id",
        "state",
        "completed",
        "failed",
        "output_file_id",
        "error_file_id",
        "error",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not a judge_batches column: {sorted(unknown)}")
    names = sorted(fields)
    assignments = ", ".join(f"{name} = ?" for name in names)
    with store.write() as db:
        db.conn.execute(
            f"UPDATE judge_batches SET {assignments}, updated_at = ? WHERE id = ?",
            [*(fields[name] for name in names), utc_now(), row_id],
        )
    return get(store, row_id)


def get(store: Store, row_id: int) -> StoredBatch:
    (row,) = store.rows("SELECT * FROM judge_batches WHERE id = ?", [row_id])
    return _batch(row)


def open_batches(store: Store, run_id: int, judge: str) -> list[StoredBatch]:
    """The batches of `judge` on a run whose results are not in the store yet, oldest first."""
    marks = ",".join("?" * len(DONE_STATES))
    rows = store.rows(
        f"SELECT * FROM judge_batches WHERE run_id = ? AND judge = ? AND state NOT IN ({marks}) "
        "ORDER BY id",
        [run_id, judge, *DONE_STATES],
    )
    return [_batch(r) for r in rows]


def of_run(store: Store, run_id: int) -> list[StoredBatch]:
    return [
        _batch(r)
        for r in store.rows("SELECT * FROM judge_batches WHERE run_id = ? ORDER BY id", [run_id])
    ]
