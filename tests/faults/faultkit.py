"""What the fault tests share: one small eval job, what it stores, the store's checks.

Every fault test ends the same way: the store passes SQLite's own checks, and a run that was
killed, starved of disk or refused a write finishes later with exactly the rows an
uninterrupted run stores. The uninterrupted run is computed once per session, in process
(the tiny model on the CPU, about a second).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccapp.engines.c2eval.evaluate import EvalConfig

Content = dict[str, Any]


def check_store(db: Path) -> None:
    """SQLite's own verdict on the file, and no row pointing at a missing parent."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """A read query on a connection of its own, closed at once (as another reader's)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def run_state(db: Path, run_id: int) -> Content:
    """A run's status and stored metrics."""
    [(status, metrics)] = rows(db, "SELECT status, metrics FROM runs WHERE id = ?", run_id)
    return {"status": status, "metrics": json.loads(metrics)}


def eval_content(db: Path, run_id: int) -> Content:
    """Everything an eval run stored, keyed by (request, k, path) instead of row ids."""
    return run_state(db, run_id) | {
        "cells": rows(
            db,
            "SELECT i.idx, c.k, c.opener, c.prefill, c.rendered_prompt, c.prompt_tokens, c.short "
            "FROM cells c JOIN items i ON i.id = c.item_id WHERE c.run_id = ? ORDER BY 1, 2",
            run_id,
        ),
        "continuations": rows(
            db,
            "SELECT i.idx, c.k, t.path, t.text, t.new_tokens, t.finish_reason "
            "FROM continuations t JOIN cells c ON c.id = t.cell_id "
            "JOIN items i ON i.id = c.item_id WHERE t.run_id = ? ORDER BY 1, 2, 3",
            run_id,
        ),
        "verdicts": rows(
            db,
            "SELECT i.idx, c.k, t.path, v.judge, v.label, v.score, v.raw, v.span_start, "
            "v.span_end, v.tokens_to_correction, v.relapse FROM verdicts v "
            "JOIN continuations t ON t.id = v.continuation_id JOIN cells c ON c.id = t.cell_id "
            "JOIN items i ON i.id = c.item_id WHERE t.run_id = ? ORDER BY 1, 2, 3, 4",
            run_id,
        ),
    }


def only_run(db: Path) -> int | None:
    """The one run in a store, or None before the first job created it."""
    if not db.exists():
        return None
    try:
        ids = [row[0] for row in rows(db, "SELECT id FROM runs")]
    except sqlite3.OperationalError:  # created, not migrated yet
        return None
    assert len(ids) <= 1, ids
    return ids[0] if ids else None


def cli_args(command: str, db: Path, **options: object) -> list[str]:
    """`ccapp COMMAND --option value …` (True: a bare flag) with events on stdout."""
    args = [command]
    for name, value in options.items():
        args += ["--" + name.replace("_", "-")] + ([] if value is True else [str(value)])
    return [*args, "--events", "jsonl", "--db", str(db)]


@dataclass(frozen=True)
class EvalJob:
    """A small eval (8 requests x k 10,20 x 2 paths = 16 batches of 2) and what it stores."""

    model: Path
    data: Path
    expected: Content = field(default_factory=dict)  # what an uninterrupted run stores
    reference_db: Path | None = None  # … in this store (closed), as this run
    reference_run: int = 0
    wal_bytes: int = 0  # what the run writes to SQLite's log, from planning to done

    LIMIT, KS, PATHS, BATCH, NEW_TOKENS = 8, (10, 20), 2, 2, 4

    def config(self) -> EvalConfig:
        return EvalConfig(
            str(self.model),
            str(self.data),
            ks=self.KS,
            paths=self.PATHS,
            limit=self.LIMIT,
            batch_size=self.BATCH,
            max_new_tokens=self.NEW_TOKENS,
            device="cpu",
        )

    def start_args(self, db: Path) -> list[str]:
        return cli_args(
            "eval",
            db,
            model=self.model,
            data=self.data,
            limit=self.LIMIT,
            k=",".join(map(str, self.KS)),
            paths=self.PATHS,
            batch_size=self.BATCH,
            max_new_tokens=self.NEW_TOKENS,
            device="cpu",
        )

    @staticmethod
    def resume_args(db: Path, run_id: int) -> list[str]:
        return ["eval", "--resume", str(run_id), "--events", "jsonl", "--db", str(db)]

    @property
    def total(self) -> int:
        return self.LIMIT * len(self.KS) * self.PATHS

    def copy_of_reference(self, db: Path) -> int:
        """A store holding the finished run (to judge it); returns the run's id."""
        assert self.reference_db is not None
        shutil.copyfile(self.reference_db, db)
        return self.reference_run


def judged_text(body: dict[str, Any]) -> str:
    """The continuation a judge request asks about."""
    question = body["messages"][-1]["content"]
    return str(question.split("<continuation>\n")[1].split("\n</continuation>")[0])


def label_for(text: str) -> str:
    """What the fake judges answer about a continuation: a fixed function of its text."""
    return "yes" if hashlib.sha256(text.encode()).digest()[0] % 2 else "no"
