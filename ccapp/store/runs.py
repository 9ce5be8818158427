"""Runs: create, read, list, update status and metrics, delete (with everything they own)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ccapp import __version__
from ccapp.errors import UserError
from ccapp.store.db import Store, utc_now
from ccapp.store.records import INTERRUPTED, Run, RunKind, RunStatus


def fingerprint(config: Mapping[str, Any]) -> str:
    """A short, order-independent hash of the settings that decide a run's outputs."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def create_run(
    store: Store,
    kind: RunKind,
    config: Mapping[str, Any],
    *,
    model: str = "",
    data: str = "",
    judge: str = "",
    parent_id: int | None = None,
    identity: Mapping[str, Any] | None = None,
) -> Run:
    """A new run in state running. `identity` (default: the config) is what is fingerprinted:
    the settings that decide the run's results, not where or how fast it ran."""
    now = utc_now()
    with store.write() as db:
        cursor = db.execute(
            """
            INSERT INTO runs (kind, status, model, data, judge, config, fingerprint,
                              parent_id, ccapp_version, created_at, updated_at, pid, host,
                              running_since)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                kind.value,
                RunStatus.RUNNING.value,
                model,
                data,
                judge,
                json.dumps(dict(config), sort_keys=True, default=str),
                fingerprint(identity if identity is not None else config),
                parent_id,
                __version__,
                now,
                now,
                os.getpid(),
                socket.gethostname(),
                now,
            ],
        )
        run_id = cursor.lastrowid
    assert run_id is not None
    return get_run(store, run_id)


def get_run(store: Store, run_id: int) -> Run:
    rows = store.rows("SELECT * FROM runs WHERE id = ?", [run_id])
    if not rows:
        raise UserError(
            f"no run {run_id} in this store",
            where=str(store.path),
            fix="list the runs with `ccapp runs list` (or pick another store with --db)",
        )
    return as_seen(Run.from_row(rows[0]))


def as_seen(run: Run) -> Run:
    """A run as it stands: one stored `running` whose process on this host is gone (the app
    quit, a crash, a killed terminal) reads as paused with an `interrupted:` error, so every
    list shows it resumable and none shows it running.

    Derived on read, not stored: the process may be gone without anyone left to write it
    down, and a reader needs no write lock. A run of another host is taken at its word.
    """
    if (
        run.status is not RunStatus.RUNNING
        or run.pid is None
        or run.host != socket.gethostname()
        or _alive(run.pid)
    ):
        return run
    return replace(
        run,
        status=RunStatus.PAUSED,
        error=f"{INTERRUPTED} its process {run.pid} ended without finishing it; resume it",
    )


def interrupted(run: Run) -> bool:
    """Whether `run` was read as interrupted (see `as_seen`)."""
    return run.interrupted


def status_text(run: Run) -> str:
    """The status a list shows: `interrupted` for a run whose process is gone."""
    return run.status_text


def list_runs(store: Store, *, kind: RunKind | None = None, limit: int | None = None) -> list[Run]:
    sql = "SELECT * FROM runs"
    params: list[Any] = []
    if kind is not None:
        sql += " WHERE kind = ?"
        params.append(kind.value)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [as_seen(Run.from_row(row)) for row in store.rows(sql, params)]


def resumable_run(store: Store, run_id: int, kind: RunKind, *, when_done: str) -> Run:
    """The run to resume: of this kind, and not finished (`when_done`: what to do instead)."""
    run = get_run(store, run_id)
    if run.kind is not kind:
        raise UserError(
            f"run {run_id} is {run.kind.a_run}, not {kind.a_run}",
            fix="resume it with its own command",
        )
    if run.status is RunStatus.DONE:
        raise UserError(f"run {run_id} is already done", fix=when_done)
    return run


def lineage(store: Store, run_id: int) -> list[Run]:
    """The chain through a run: its ancestors (eval → syn → train …), the run, then its
    descendants, following the newest child at each step."""
    chain = [get_run(store, run_id)]
    seen = {run_id}
    while chain[0].parent_id is not None and chain[0].parent_id not in seen:
        seen.add(chain[0].parent_id)
        chain.insert(0, get_run(store, chain[0].parent_id))
    while True:
        rows = store.rows(
            "SELECT * FROM runs WHERE parent_id = ? ORDER BY id DESC LIMIT 1", [chain[-1].id]
        )
        if not rows or rows[0]["id"] in seen:
            return chain
        seen.add(rows[0]["id"])
        chain.append(as_seen(Run.from_row(rows[0])))


def set_status(
    store: Store,
    run_id: int,
    status: RunStatus,
    *,
    error: str | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Run:
    """Move a run to `status`; finished states stamp finished_at, others clear it."""
    now = utc_now()
    finished = now if status in (RunStatus.DONE, RunStatus.FAILED, RunStatus.CANCELLED) else None
    with store.write() as db:
        db.execute(
            "UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?",
            [status.value, error, now, finished, run_id],
        )
        if status is not RunStatus.RUNNING:  # it stops running: count the time it ran
            db.execute(
                "UPDATE runs SET seconds_running = seconds_running + MAX(0, "
                "(julianday(?) - julianday(running_since)) * 86400), running_since = NULL "
                "WHERE id = ? AND running_since IS NOT NULL",
                [now, run_id],
            )
        if metrics is not None:
            _write_metrics(db, run_id, metrics, now)
    return get_run(store, run_id)


def claim(store: Store, run_id: int) -> Run:
    """Mark a run as running in this process, refusing one that a live process still runs.
    (A run whose process died keeps no record of how long that process ran: its
    `running_since` is replaced here, and `seconds_running` counts the runs that ended.)"""
    now = utc_now()
    with store.write() as db:
        run = get_run(store, run_id)
        if run_elsewhere(run):
            raise UserError(
                f"run {run_id} is still running in process {run.pid}",
                fix="stop that process first (Ctrl-C, or cancel it in the app), then resume",
            )
        db.execute(
            "UPDATE runs SET status = ?, error = NULL, finished_at = NULL, updated_at = ?, "
            "pid = ?, host = ?, running_since = ? WHERE id = ?",
            [RunStatus.RUNNING.value, now, os.getpid(), socket.gethostname(), now, run_id],
        )
    return get_run(store, run_id)


def run_elsewhere(run: Run) -> bool:
    """Whether another live process on this host is running `run` (so it must be left alone)."""
    return (
        run.status is RunStatus.RUNNING
        and run.pid is not None
        and run.pid != os.getpid()
        and run.host == socket.gethostname()
        and _alive(run.pid)
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def continuations_per_k(store: Store, run_id: int) -> dict[int, int]:
    """How many continuations an eval run has stored, by k (what a resume starts from)."""
    rows = store.rows(
        "SELECT c.k AS k, COUNT(*) AS n FROM continuations AS t JOIN cells AS c "
        "ON c.id = t.cell_id WHERE t.run_id = ? GROUP BY c.k",
        [run_id],
    )
    return {int(row["k"]): int(row["n"]) for row in rows}


def set_metrics(store: Store, run_id: int, metrics: Mapping[str, Any]) -> None:
    with store.write() as db:
        _write_metrics(db, run_id, metrics, utc_now())


def update_config(store: Store, run_id: int, changes: Mapping[str, Any]) -> Run:
    """Merge `changes` into a run's stored config (top-level keys), leaving its fingerprint:
    for facts learnt while it runs, such as a server refusing a sampling setting."""
    with store.write() as db:
        row = db.execute("SELECT config FROM runs WHERE id = ?", [run_id]).fetchone()
        if row is None:
            raise UserError(f"no run {run_id}", fix="see ccapp runs list")
        config = json.loads(row[0]) | dict(changes)
        db.execute(
            "UPDATE runs SET config = ?, updated_at = ? WHERE id = ?",
            [json.dumps(config, sort_keys=True, default=str), utc_now(), run_id],
        )
    return get_run(store, run_id)


def deletion_question(store: Store, run: Run) -> str:
    """What deleting `run` takes and what it leaves, asked before it is done: its rows go
    (prompts, continuations, verdicts, groups and pairs, the training log); a trained model's
    folder stays on disk; the runs made from it keep their results but lose their link."""
    made = {
        RunKind.EVAL: "its prompts, continuations and verdicts",
        RunKind.SYN: "its groups and preference pairs",
        RunKind.TRAIN: "its training log and checkpoints' records",
    }[run.kind]
    question = f"Delete run {run.id} ({run.kind.value}, {run.model}) with {made}?"
    output = run.metrics.get("output") or run.config.get("output")
    if run.kind is RunKind.TRAIN and output:
        question += f" The model folder {output} stays on disk."
    children = [
        row["id"]
        for row in store.rows("SELECT id FROM runs WHERE parent_id = ? ORDER BY id", [run.id])
    ]
    if children:
        named = ", ".join(map(str, children))
        one = len(children) == 1
        question += (
            f" {'Run' if one else 'Runs'} {named}, made from it, "
            f"{'keeps its' if one else 'keep their'} results but "
            f"{'loses' if one else 'lose'} this link."
        )
    return question + " This cannot be undone."


def delete_run(store: Store, run_id: int) -> Run:
    """Delete a run and, by cascade, its items, continuations, verdicts, groups and logs.

    A run that a live process is still writing is refused: its job would fail mid-way.
    """
    run = get_run(store, run_id)
    if run_elsewhere(run):
        raise UserError(
            f"run {run_id} is running in process {run.pid}",
            fix="cancel it first (Ctrl-C, or esc in the app), then delete it",
        )
    with store.write() as db:
        db.execute("DELETE FROM runs WHERE id = ?", [run_id])
    return run


def _write_metrics(db: Any, run_id: int, metrics: Mapping[str, Any], now: str) -> None:
    db.execute(
        "UPDATE runs SET metrics = ?, updated_at = ? WHERE id = ?",
        [json.dumps(dict(metrics), sort_keys=True), now, run_id],
    )
