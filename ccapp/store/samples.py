"""A run's samples, one row per continuation × verdict, read in bounded chunks.

The samples export (`ccapp export RUN --format samples`) must stay within a fixed memory
budget for runs of a million rows, so nothing here reads a whole run: cells are walked in
(request, k) order and grouped until a group holds about `continuations_per_chunk`
continuations; each group is one indexed query whose rows are sorted in memory that the
group bounds. A continuation no judge has judged yet still gives one row, with no verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from ccapp.store.db import Store

MAX_CELLS_PER_QUERY = 900  # SQLite's bound on ? parameters is 999 in older builds


class SampleRow(NamedTuple):
    """One continuation with one judge's verdict (the verdict fields are None without one)."""

    continuation_id: int
    request_id: int
    request: str
    k: int
    opener: str
    prefill: str
    path: int
    continuation: str
    new_tokens: int
    finish_reason: str
    judge: str | None
    label: str | None
    score: float | None
    judge_answer: str | None
    span_start: int | None
    span_end: int | None
    tokens_to_correction: int | None
    relapse: bool | None


def cell_groups(store: Store, run_id: int, continuations_per_chunk: int) -> Iterator[list[int]]:
    """Cell ids in (request, k) order, grouped so that each group holds about
    `continuations_per_chunk` continuations (at least one cell, at most 900)."""
    rows = store.conn.execute(
        """
        SELECT c.id, (SELECT count(*) FROM continuations t WHERE t.cell_id = c.id)
        FROM cells c JOIN items i ON i.id = c.item_id
        WHERE c.run_id = ? ORDER BY i.idx, c.k
        """,
        [run_id],
    )
    group: list[int] = []
    held = 0
    for cell_id, count in rows.fetchall():
        if group and (held + count > continuations_per_chunk or len(group) >= MAX_CELLS_PER_QUERY):
            yield group
            group, held = [], 0
        group.append(cell_id)
        held += count
    if group:
        yield group


def sample_chunks(
    store: Store, run_id: int, *, continuations_per_chunk: int = 5000
) -> Iterator[list[SampleRow]]:
    """The run's samples in (request, k, path, judge) order, one list per group of cells."""
    for group in cell_groups(store, run_id, continuations_per_chunk):
        marks = ",".join("?" * len(group))
        cursor = store.conn.execute(
            f"""
            SELECT t.id, i.idx, i.request, c.k, c.opener, c.prefill, t.path, t.text,
                   t.new_tokens, t.finish_reason, v.judge, v.label, v.score, v.raw,
                   v.span_start, v.span_end, v.tokens_to_correction, v.relapse
            FROM continuations t
            JOIN cells c ON c.id = t.cell_id
            JOIN items i ON i.id = c.item_id
            LEFT JOIN verdicts v ON v.continuation_id = t.id
            WHERE t.cell_id IN ({marks})
            ORDER BY i.idx, c.k, t.path, v.judge
            """,
            group,
        )
        chunk = [_row(r) for r in cursor]
        if chunk:
            yield chunk


def _row(r: tuple) -> SampleRow:
    """A query row as a SampleRow. Without a correction span, tokens to correction and
    relapse were never measured (see evals.judged), so they are None, not 0 / False."""
    (cid, idx, request, k, opener, prefill, path, text, new_tokens, finish) = r[:10]
    (judge, label, score, raw, start, end, tokens, relapse) = r[10:]
    measured = start is not None
    return SampleRow(
        cid,
        idx,
        request,
        k,
        opener,
        prefill,
        path,
        text,
        new_tokens,
        finish,
        judge,
        label,
        score,
        raw,
        start,
        end,
        tokens if measured else None,
        bool(relapse) if measured else None,
    )
