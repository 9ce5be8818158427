"""Writing a Syn run's preference pairs as a `datasets` dataset that DPOTrainer loads as is.

Each of a group's 15 ordered pairs becomes one row in TRL's conversational preference
format: `prompt` is the user turn, `chosen` and `rejected` the assistant turns. Groups are
read a chunk at a time and written shard by shard, so memory stays flat however many
groups the run holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ccapp.errors import UserError
from ccapp.store import Store, runs
from ccapp.store import syn as syn_store
from ccapp.store.records import RunKind

SHARD_ROWS = 100_000
PAIRS_SCHEMA_VERSION = 1


def pair_rows(store: Store, run_id: int) -> Iterator[dict[str, Any]]:
    """Every ordered pair (better, worse) of every accepted group, better first."""
    for group in syn_store.iter_groups(store, run_id, status="ok"):
        prompt = [{"role": "user", "content": group.request}]
        ranked = sorted(group.responses, key=lambda r: r.rank)
        for i, better in enumerate(ranked):
            for worse in ranked[i + 1 :]:
                yield {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": better.text}],
                    "rejected": [{"role": "assistant", "content": worse.text}],
                }


def export_pairs(
    store: Store,
    run_id: int,
    out_dir: Path,
    *,
    jsonl: bool = False,
    force: bool = False,
    shard_rows: int = SHARD_ROWS,
) -> dict[str, Any]:
    run = runs.get_run(store, run_id)
    if run.kind is not RunKind.SYN:
        raise UserError(
            f"run {run_id} is {run.kind.a_run}; only syn runs have pairs",
            fix="export a syn run (ccapp runs list --kind syn)",
        )
    out_dir = out_dir.expanduser()
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise UserError(
            "exists and is not empty; nothing was written",
            where=str(out_dir),
            fix="choose a new folder, or pass --force to replace its files",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in list(out_dir.glob("train-*.parquet")) + list(out_dir.glob("train.jsonl")):
        old.unlink()
    rows = 0
    files: list[str] = []
    if jsonl:
        path = out_dir / "train.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for row in pair_rows(store, run_id):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                rows += 1
        files.append(path.name)
    else:
        rows, files = _write_parquet(pair_rows(store, run_id), out_dir, shard_rows)
    meta = {
        "schema_version": PAIRS_SCHEMA_VERSION,
        "run_id": run_id,
        "model": run.model,
        "pairs": rows,
        "groups": rows // 15,
        "files": files,
        "format": "TRL conversational preference: prompt / chosen / rejected",
    }
    (out_dir / "ccapp_pairs.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _write_parquet(
    rows: Iterator[dict[str, Any]], out_dir: Path, shard_rows: int
) -> tuple[int, list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    schema = pa.schema([("prompt", message), ("chosen", message), ("rejected", message)])
    written = 0
    files: list[str] = []
    buffer: list[dict[str, Any]] = []
    writer: Any = None

    def flush() -> None:
        nonlocal writer
        if not buffer:
            return
        if writer is None:
            name = f"train-{len(files):05d}.parquet"
            files.append(name)
            writer = pq.ParquetWriter(out_dir / name, schema)
        writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
        buffer.clear()

    in_shard = 0
    for row in rows:
        buffer.append(row)
        written += 1
        in_shard += 1
        if len(buffer) >= 5_000:
            flush()
        if in_shard >= shard_rows:
            flush()
            writer.close()
            writer, in_shard = None, 0
    flush()
    if writer is not None:
        writer.close()
    return written, files
