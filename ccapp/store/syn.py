"""C2-Syn rows: a group per request holding six ranked responses; pairs are derived."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ccapp.store.db import Store, utc_now

ROLES = ("safe", "syn1", "syn2", "syn3", "syn4", "harmful")  # best to worst: rank = index


@dataclass(frozen=True)
class Response:
    rank: int
    role: str
    text: str
    cut_chars: int | None = None  # where the harmful response was cut (SYN_i)
    trigger: str | None = None


@dataclass(frozen=True)
class Group:
    id: int
    item_idx: int
    request: str
    status: str  # ok | rejected
    reason: str | None
    responses: list[Response]


def save_group(
    store: Store,
    run_id: int,
    item_id: int,
    status: str,
    reason: str | None,
    responses: Sequence[Response],
) -> int:
    """A group and its responses, in one transaction (a resumed run never halves one)."""
    with store.write() as db:
        cursor = db.conn.execute(
            "INSERT INTO syn_groups (run_id, item_id, status, reason, created_at) VALUES (?, ?, ?, ?, ?)",
            [run_id, item_id, status, reason, utc_now()],
        )
        group_id = int(cursor.lastrowid or 0)
        db.conn.executemany(
            "INSERT INTO syn_responses (group_id, rank, role, text, cut_chars, trigger) VALUES (?, ?, ?, ?, ?, ?)",
            [(group_id, r.rank, r.role, r.text, r.cut_chars, r.trigger) for r in responses],
        )
    return group_id


def done_items(store: Store, run_id: int) -> set[int]:
    return {
        row[0]
        for row in store.conn.execute("SELECT item_id FROM syn_groups WHERE run_id = ?", [run_id])
    }


def counts(store: Store, run_id: int) -> dict[str, int]:
    rows = store.conn.execute(
        "SELECT status, count(*) FROM syn_groups WHERE run_id = ? GROUP BY status", [run_id]
    )
    found = dict(rows.fetchall())
    return {"ok": int(found.get("ok", 0)), "rejected": int(found.get("rejected", 0))}


def rejection_reasons(store: Store, run_id: int) -> dict[str, int]:
    rows = store.conn.execute(
        "SELECT reason, count(*) FROM syn_groups WHERE run_id = ? AND status = 'rejected' GROUP BY reason",
        [run_id],
    )
    return {reason or "?": int(n) for reason, n in rows}


def iter_groups(
    store: Store, run_id: int, *, status: str | None = "ok", chunk: int = 1000
) -> Iterator[Group]:
    """Every group of a run with its responses, read a chunk at a time (keyset paging), so
    exporting 50K groups never holds them all in memory."""
    last = 0
    while True:
        sql = (
            "SELECT g.id, i.idx, i.request, g.status, g.reason FROM syn_groups g "
            "JOIN items i ON i.id = g.item_id WHERE g.run_id = ? AND g.id > ?"
        )
        params: list[object] = [run_id, last]
        if status is not None:
            sql += " AND g.status = ?"
            params.append(status)
        heads = store.conn.execute(sql + " ORDER BY g.id LIMIT ?", [*params, chunk]).fetchall()
        if not heads:
            return
        ids = [head[0] for head in heads]
        marks = ",".join("?" * len(ids))
        responses: dict[int, list[Response]] = {i: [] for i in ids}
        for group_id, rank, role, text, cut, trigger in store.conn.execute(
            f"SELECT group_id, rank, role, text, cut_chars, trigger FROM syn_responses "
            f"WHERE group_id IN ({marks}) ORDER BY group_id, rank",
            ids,
        ):
            responses[group_id].append(Response(rank, role, text, cut, trigger))
        for group_id, idx, request, group_status, reason in heads:
            yield Group(group_id, idx, request, group_status, reason, responses[group_id])
        last = ids[-1]


def latest_group(store: Store, run_id: int) -> Group | None:
    row = store.conn.execute("SELECT max(id) FROM syn_groups WHERE run_id = ?", [run_id]).fetchone()
    if not row or row[0] is None:
        return None
    return get_group(store, row[0])


def _group(store: Store, group_id: int) -> Iterator[Group]:
    head = store.conn.execute(
        "SELECT g.id, i.idx, i.request, g.status, g.reason FROM syn_groups g JOIN items i ON i.id = g.item_id "
        "WHERE g.id = ?",
        [group_id],
    ).fetchone()
    if head is None:
        return
    responses = [
        Response(rank, role, text, cut, trigger)
        for rank, role, text, cut, trigger in store.conn.execute(
            "SELECT rank, role, text, cut_chars, trigger FROM syn_responses WHERE group_id = ? ORDER BY rank",
            [group_id],
        )
    ]
    yield Group(head[0], head[1], head[2], head[3], head[4], responses)


def pair_count(store: Store, run_id: int) -> int:
    return store.count("preference_pairs", "run_id = ?", [run_id])


def pairs_digest(store: Store, run_id: int) -> str:
    """A hash of everything a run's pairs are made of (each accepted group's request and
    ranked responses), streamed row by row. It keys the training dataset's cache on content:
    the store path and run id stay the same when a store is recreated or a run resumed."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    rows = store.conn.execute(
        "SELECT g.id, i.request, r.rank, r.text FROM syn_groups g "
        "JOIN items i ON i.id = g.item_id JOIN syn_responses r ON r.group_id = g.id "
        "WHERE g.run_id = ? AND g.status = 'ok' ORDER BY g.id, r.rank",
        [run_id],
    )
    last_group = None
    for group_id, request, rank, text in rows:
        if group_id != last_group:
            _feed(digest, f"group {group_id}", request)
            last_group = group_id
        _feed(digest, f"rank {rank}", text)
    return digest.hexdigest()


def _feed(digest: Any, label: str, text: str) -> None:
    """Length-prefixed, so no two different row sequences feed the same bytes."""
    data = text.encode()
    digest.update(f"{label} {len(data)}:".encode() + data)


@dataclass(frozen=True)
class DoneSyn:
    """A finished syn run as the Train form offers it."""

    run_id: int
    pairs: int
    model: str  # the model whose completions the pairs hold


def latest_done_run(store: Store) -> DoneSyn | None:
    """The newest finished syn run, its pair count and model: what a new training most
    likely wants (the Train form offers it)."""
    row = store.conn.execute(
        "SELECT id, model FROM runs WHERE kind = 'syn' AND status = 'done' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return DoneSyn(int(row[0]), pair_count(store, int(row[0])), str(row[1]))


@dataclass(frozen=True)
class GroupHead:
    """A group as a list shows it: which request, kept or rejected and why."""

    id: int
    item_idx: int
    request: str
    status: str
    reason: str | None


def group_heads(
    store: Store, run_id: int, *, status: str | None = None, offset: int = 0, limit: int = 100
) -> tuple[list[GroupHead], int]:
    """A page of a run's groups in the order they were made (`status`: ok, rejected or
    None for both), and how many there are in all."""
    where, params = "g.run_id = ?", list[object]([run_id])
    if status is not None:
        where += " AND g.status = ?"
        params.append(status)
    total = int(
        store.conn.execute(f"SELECT count(*) FROM syn_groups g WHERE {where}", params).fetchone()[0]
    )
    rows = store.conn.execute(
        "SELECT g.id, i.idx, i.request, g.status, g.reason FROM syn_groups g "
        f"JOIN items i ON i.id = g.item_id WHERE {where} ORDER BY g.id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [GroupHead(*row) for row in rows], total


def get_group(store: Store, group_id: int) -> Group | None:
    """One group with its six responses, best to worst."""
    return next(_group(store, group_id), None)


def group_pairs(store: Store, group_id: int) -> list[tuple[int, int]]:
    """The (chosen rank, rejected rank) of each preference pair a group gives (15 for a kept
    group, none for a rejected one), as the preference_pairs view derives them."""
    rows = store.conn.execute(
        "SELECT chosen_rank, rejected_rank FROM preference_pairs WHERE group_id = ? "
        "ORDER BY chosen_rank, rejected_rank",
        [group_id],
    )
    return [(int(c), int(r)) for c, r in rows]
