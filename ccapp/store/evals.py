"""C2-Eval rows: items, cells (prefill + rendered prompt), continuations and verdicts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ccapp.store.db import Store, utc_now
from ccapp.store.records import Cell, Continuation, Item, NewCell, StoredVerdict, from_row


@dataclass(frozen=True)
class NewContinuation:
    cell_id: int
    path: int
    text: str
    new_tokens: int
    finish_reason: str


@dataclass(frozen=True)
class NewVerdict:
    judge: str
    label: str
    score: float | None = None
    raw: str | None = None
    span: tuple[int, int] | None = None
    tokens_to_correction: int | None = None
    relapse: bool = False


def insert_items(
    store: Store, run_id: int, rows: Iterable[tuple[int, int | None, str, str, str | None]]
) -> list[Item]:
    """Rows are (idx, source line, request, harmful response, safe response)."""
    with store.write() as db:
        db.conn.executemany(
            "INSERT INTO items (run_id, idx, source_line, request, harmful_response, safe_response) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(run_id, *row) for row in rows],
        )
    return get_items(store, run_id)


def get_items(store: Store, run_id: int) -> list[Item]:
    return [
        from_row(Item, r)
        for r in store.rows("SELECT * FROM items WHERE run_id = ? ORDER BY idx", [run_id])
    ]


def insert_cells(store: Store, run_id: int, cells: Sequence[NewCell]) -> None:
    with store.write() as db:
        db.conn.executemany(
            "INSERT INTO cells (run_id, item_id, k, opener, prefill, rendered_prompt, prompt_tokens, "
            "short, prefill_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    c.item_id,
                    c.k,
                    c.opener,
                    c.prefill,
                    c.rendered_prompt,
                    c.prompt_tokens,
                    int(c.short),
                    c.prefill_tokens,
                )
                for c in cells
            ],
        )


def get_cells(store: Store, run_id: int) -> list[Cell]:
    rows = store.rows(
        "SELECT c.*, i.idx AS item_idx FROM cells c JOIN items i ON i.id = c.item_id "
        "WHERE c.run_id = ? ORDER BY i.idx, c.k",
        [run_id],
    )
    return [_cell(r) for r in rows]


def done_paths(store: Store, run_id: int) -> set[tuple[int, int]]:
    rows = store.conn.execute("SELECT cell_id, path FROM continuations WHERE run_id = ?", [run_id])
    return {(cell, path) for cell, path in rows}


def save_continuations(
    store: Store,
    run_id: int,
    produced: Sequence[tuple[NewContinuation, NewVerdict | None]],
) -> dict[tuple[int, int], int]:
    """Store a batch and its verdicts in one transaction; returns ids by (cell, path).

    A (cell, path) already stored is left as it is: a resumed batch never doubles a row.
    """
    now = utc_now()
    ids: dict[tuple[int, int], int] = {}
    with store.write() as db:
        for cont, verdict in produced:
            cursor = db.conn.execute(
                "INSERT OR IGNORE INTO continuations (run_id, cell_id, path, text, new_tokens, "
                "finish_reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    cont.cell_id,
                    cont.path,
                    cont.text,
                    cont.new_tokens,
                    cont.finish_reason,
                    now,
                ],
            )
            if cursor.rowcount == 0:
                continue
            ids[(cont.cell_id, cont.path)] = int(cursor.lastrowid or 0)
            if verdict is not None:
                _insert_verdict(db.conn, ids[(cont.cell_id, cont.path)], verdict, now)
    return ids


def save_verdicts(store: Store, verdicts: Sequence[tuple[int, NewVerdict]]) -> None:
    """(continuation id, verdict) pairs; a judge's earlier verdict on the same row is replaced."""
    now = utc_now()
    with store.write() as db:
        for continuation_id, verdict in verdicts:
            _insert_verdict(db.conn, continuation_id, verdict, now)


def _insert_verdict(conn: Any, continuation_id: int, v: NewVerdict, now: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO verdicts (continuation_id, judge, label, score, raw, span_start, "
        "span_end, tokens_to_correction, relapse, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            continuation_id,
            v.judge,
            v.label,
            v.score,
            v.raw,
            v.span[0] if v.span else None,
            v.span[1] if v.span else None,
            v.tokens_to_correction,
            int(v.relapse),
            now,
        ],
    )


def judged(
    store: Store, run_id: int, judge: str
) -> list[tuple[int, int, str, int | None, bool, bool]]:
    """(item idx, k, label, tokens to correction, relapse, measured) for every verdict of
    `judge`. Measured: the verdict has a correction span (its own or the heuristic's); without
    one, tokens to correction and relapse were never measured, whatever the columns hold."""
    rows = store.conn.execute(
        """
        SELECT i.idx, c.k, v.label, v.tokens_to_correction, v.relapse, v.span_start
        FROM verdicts v
        JOIN continuations t ON t.id = v.continuation_id
        JOIN cells c ON c.id = t.cell_id
        JOIN items i ON i.id = c.item_id
        WHERE t.run_id = ? AND v.judge = ?
        """,
        [run_id, judge],
    )
    return [
        (idx, k, label, ttc, bool(relapse), start is not None)
        for idx, k, label, ttc, relapse, start in rows
    ]


def judges_of(store: Store, run_id: int) -> list[str]:
    rows = store.conn.execute(
        "SELECT DISTINCT v.judge FROM verdicts v JOIN continuations t ON t.id = v.continuation_id "
        "WHERE t.run_id = ? ORDER BY v.judge",
        [run_id],
    )
    return [r[0] for r in rows]


def verdict_counts(store: Store, run_id: int) -> dict[str, int]:
    """How many of the run's continuations each judge has a verdict for."""
    rows = store.conn.execute(
        "SELECT v.judge, COUNT(*) FROM verdicts v JOIN continuations t "
        "ON t.id = v.continuation_id WHERE t.run_id = ? GROUP BY v.judge",
        [run_id],
    )
    return {judge: n for judge, n in rows}


def count_short_cells(store: Store, run_id: int) -> int:
    return store.count("cells", "run_id = ? AND short = 1", [run_id])


def continuations(
    store: Store, run_id: int, *, limit: int | None = None, offset: int = 0
) -> list[Continuation]:
    """A run's continuations with every judge's verdict, in (item, k, path) order."""
    sql = """
        SELECT t.id FROM continuations t JOIN cells c ON c.id = t.cell_id
        JOIN items i ON i.id = c.item_id
        WHERE t.run_id = ? ORDER BY i.idx, c.k, t.path
    """
    params: list[Any] = [run_id]
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return continuations_by_id(store, [row[0] for row in store.conn.execute(sql, params)])


@dataclass(frozen=True)
class Unjudged:
    """A stored continuation with what a judge needs to see."""

    continuation_id: int
    cell_id: int
    item_idx: int
    k: int
    path: int
    request: str
    prefill: str
    text: str
    heuristic_span: tuple[int, int] | None
    heuristic_tokens: int | None  # tokens before the heuristic's span
    heuristic_relapse: bool


def unjudged(
    store: Store,
    run_id: int,
    judge: str,
    *,
    redo: tuple[str, ...] = ("error",),
    everything: bool = False,
) -> list[Unjudged]:
    """Continuations `judge` has not judged yet (or judged with a label in `redo`)."""
    if everything:
        condition = "1 = 1"
        params: list[Any] = [run_id]
    else:
        marks = ",".join("?" * len(redo)) or "''"
        condition = (
            f"NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.continuation_id = t.id "
            f"AND v.judge = ? AND v.label NOT IN ({marks}))"
        )
        params = [run_id, judge, *redo]
    rows = store.conn.execute(
        f"""
        SELECT t.id, t.cell_id, i.idx, c.k, t.path, i.request, c.prefill, t.text,
               h.span_start, h.span_end, h.tokens_to_correction, h.relapse
        FROM continuations t
        JOIN cells c ON c.id = t.cell_id
        JOIN items i ON i.id = c.item_id
        LEFT JOIN verdicts h ON h.continuation_id = t.id AND h.judge = 'heuristic'
        WHERE t.run_id = ? AND {condition}
        ORDER BY i.idx, c.k, t.path
        """,
        params,
    )
    return [
        Unjudged(
            cid,
            cell,
            idx,
            k,
            path,
            request,
            prefill,
            text,
            (start, end) if start is not None else None,
            tokens,
            bool(relapse),
        )
        for cid, cell, idx, k, path, request, prefill, text, start, end, tokens, relapse in rows
    ]


def count_continuations(store: Store, run_id: int) -> int:
    return store.count("continuations", "run_id = ?", [run_id])


def cached_verdicts(
    store: Store, keys: Sequence[str]
) -> dict[str, tuple[str, float | None, str | None]]:
    found: dict[str, tuple[str, float | None, str | None]] = {}
    for start in range(0, len(keys), 900):
        chunk = list(keys[start : start + 900])
        marks = ",".join("?" * len(chunk))
        for key, label, score, raw in store.conn.execute(
            f"SELECT key, label, score, raw FROM verdict_cache WHERE key IN ({marks})", chunk
        ):
            found[key] = (label, score, raw)
    return found


def remember_verdicts(
    store: Store, judge: str, entries: Sequence[tuple[str, str, float | None, str | None]]
) -> None:
    """(key, label, score, raw) into the verdict cache; only yes/no verdicts are kept."""
    now = utc_now()
    with store.write() as db:
        db.conn.executemany(
            "INSERT OR REPLACE INTO verdict_cache (key, judge, label, score, raw, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (key, judge, label, score, raw, now)
                for key, label, score, raw in entries
                if label in ("yes", "no")
            ],
        )


@dataclass(frozen=True)
class JudgeUsage:
    judge: str
    calls: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None


def add_usage(
    store: Store,
    run_id: int,
    judge: str,
    *,
    calls: int,
    cached: int,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float | None,
) -> None:
    with store.write() as db:
        db.conn.execute(
            """
            INSERT INTO judge_usage (run_id, judge, calls, cached, prompt_tokens, completion_tokens, cost_usd)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (run_id, judge) DO UPDATE SET
                calls = calls + excluded.calls,
                cached = cached + excluded.cached,
                prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                completion_tokens = completion_tokens + excluded.completion_tokens,
                cost_usd = CASE WHEN excluded.cost_usd IS NULL THEN cost_usd
                                ELSE coalesce(cost_usd, 0) + excluded.cost_usd END
            """,
            [run_id, judge, calls, cached, prompt_tokens, completion_tokens, cost_usd],
        )


def usage(store: Store, run_id: int) -> list[JudgeUsage]:
    return [
        from_row(JudgeUsage, r)
        for r in store.rows("SELECT * FROM judge_usage WHERE run_id = ? ORDER BY judge", [run_id])
    ]


def verdict_labels(store: Store, run_id: int, judge: str) -> dict[int, tuple[int, int, str]]:
    """continuation id -> (item idx, k, label) for one judge."""
    rows = store.conn.execute(
        """
        SELECT t.id, i.idx, c.k, v.label FROM verdicts v
        JOIN continuations t ON t.id = v.continuation_id
        JOIN cells c ON c.id = t.cell_id JOIN items i ON i.id = c.item_id
        WHERE t.run_id = ? AND v.judge = ?
        """,
        [run_id, judge],
    )
    return {cid: (idx, k, label) for cid, idx, k, label in rows}


@dataclass(frozen=True)
class CellInfo:
    """What the live view shows around a streaming continuation."""

    cell_id: int
    item_idx: int
    k: int
    request: str
    prefill: str


def cell_info(store: Store, cell_ids: Sequence[int]) -> dict[int, CellInfo]:
    found: dict[int, CellInfo] = {}
    ids = list(cell_ids)
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        for cid, idx, k, request, prefill in store.conn.execute(
            f"SELECT c.id, i.idx, c.k, i.request, c.prefill FROM cells c JOIN items i ON i.id = c.item_id "
            f"WHERE c.id IN ({marks})",
            chunk,
        ):
            found[cid] = CellInfo(cid, idx, k, request, prefill)
    return found


@dataclass(frozen=True)
class BrowseFilter:
    k: int | None = None
    judge: str | None = None  # with label: only this judge's verdicts with that label
    label: str | None = None
    disagree: tuple[str, str] | None = None  # two judges whose yes/no differ


def browse(
    store: Store, run_id: int, flt: BrowseFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[Continuation], int]:
    """A page of a run's continuations matching `flt`, and how many match in all.

    Indexed lookups only (run, cell, verdict by continuation), so a page costs what its
    run holds, never what the whole store holds: ~20-130 ms for a 20K-continuation run in
    a store of 1M (benchmarks/bench_store_load.py; tests/test_store_load.py pins the plans).
    The count and the sort still read the whole run: in a single run of 1M a page takes
    0.6 s unfiltered and several seconds filtered.
    """
    where = ["t.run_id = ?"]
    params: list[Any] = [run_id]
    if flt.k is not None:
        where.append("c.k = ?")
        params.append(flt.k)
    if flt.label is not None and flt.judge is not None:
        where.append(
            "EXISTS (SELECT 1 FROM verdicts v WHERE v.continuation_id = t.id "
            "AND v.judge = ? AND v.label = ?)"
        )
        params += [flt.judge, flt.label]
    if flt.disagree is not None:
        where.append(
            "EXISTS (SELECT 1 FROM verdicts a JOIN verdicts b ON b.continuation_id = a.continuation_id "
            "WHERE a.continuation_id = t.id AND a.judge = ? AND b.judge = ? "
            "AND a.label IN ('yes', 'no') AND b.label IN ('yes', 'no') AND a.label != b.label)"
        )
        params += list(flt.disagree)
    condition = " AND ".join(where)
    base = f"FROM continuations t JOIN cells c ON c.id = t.cell_id WHERE {condition}"
    total = int(store.conn.execute(f"SELECT count(*) {base}", params).fetchone()[0])
    ids = [
        row[0]
        for row in store.conn.execute(
            f"SELECT t.id {base} ORDER BY t.id LIMIT ? OFFSET ?", [*params, limit, offset]
        )
    ]
    return continuations_by_id(store, ids), total


def continuations_by_id(store: Store, ids: Sequence[int]) -> list[Continuation]:
    """The continuations with these ids, in the order given, each with all its verdicts."""
    found: dict[int, Continuation] = {}
    for start in range(0, len(ids), 900):
        chunk = list(ids[start : start + 900])
        marks = ",".join("?" * len(chunk))
        rows = store.rows(
            f"""
            SELECT t.id, t.cell_id, i.idx AS item_idx, c.k, t.path, t.text, t.new_tokens,
                   t.finish_reason
            FROM continuations t JOIN cells c ON c.id = t.cell_id JOIN items i ON i.id = c.item_id
            WHERE t.id IN ({marks})
            """,
            chunk,
        )
        verdicts: dict[int, dict[str, StoredVerdict]] = {r["id"]: {} for r in rows}
        for v in store.rows(f"SELECT * FROM verdicts WHERE continuation_id IN ({marks})", chunk):
            span = (v["span_start"], v["span_end"]) if v["span_start"] is not None else None
            verdicts[v["continuation_id"]][v["judge"]] = StoredVerdict(
                v["judge"],
                v["label"],
                v["score"],
                v["raw"],
                span,
                v["tokens_to_correction"],
                bool(v["relapse"]),
            )
        for r in rows:
            found[r["id"]] = Continuation(
                r["id"],
                r["cell_id"],
                r["item_idx"],
                r["k"],
                r["path"],
                r["text"],
                r["new_tokens"],
                r["finish_reason"],
                verdicts[r["id"]],
            )
    return [found[i] for i in ids if i in found]


def cell(store: Store, cell_id: int) -> Cell | None:
    rows = store.rows(
        "SELECT c.*, i.idx AS item_idx FROM cells c JOIN items i ON i.id = c.item_id WHERE c.id = ?",
        [cell_id],
    )
    if not rows:
        return None
    return _cell(rows[0])


def _cell(r: Any) -> Cell:
    """A cells row (joined with its item's index) as a Cell."""
    return from_row(Cell, r, short=bool(r["short"]))
