"""Exporting the paper's scale of pairs — 50K groups, 750K pairs — in bounded memory.

Builds a synthetic Syn run of `--groups` groups (six responses of realistic length each)
in a temporary store, then exports its pairs as parquet shards in a child process and
reports that process's peak RSS beside the size of the pairs' text: streaming keeps the
former flat while the latter grows with the run.

    python benchmarks/bench_syn_export.py [--groups 50000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from ccapp.store import Store
from ccapp.engines.c2syn.pairs_export import export_pairs
started = time.perf_counter()
with Store.open(sys.argv[1]) as store:
    meta = export_pairs(store, int(sys.argv[2]), Path(sys.argv[3]))
print(json.dumps({"pairs": meta["pairs"], "files": len(meta["files"]), "seconds": time.perf_counter() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build_store(path: Path, groups: int) -> tuple[int, int]:
    """A syn run with `groups` groups; returns its id and the bytes of text its pairs hold."""
    from ccapp.store import RunKind, Store, runs
    from ccapp.store.db import utc_now

    words = [
        "First",
        "get",
        "the",
        "tools",
        "then",
        "wait",
        "until",
        "night",
        "and",
        "open",
        "the",
        "window",
        "quietly",
    ]
    with Store.open(path) as store:
        run = runs.create_run(store, RunKind.SYN, {"synthetic": True}, model="bench")
        now = utc_now()
        text_bytes = 0
        with store.write() as db:
            for start in range(0, groups, 5000):
                batch = range(start, min(groups, start + 5000))
                db.conn.executemany(
                    "INSERT INTO items (id, run_id, idx, request, harmful_response) VALUES (?, ?, ?, ?, ?)",
                    [
                        (i + 1, run.id, i, f"How do I do thing number {i}?", " ".join(words * 8))
                        for i in batch
                    ],
                )
                db.conn.executemany(
                    "INSERT INTO syn_groups (id, run_id, item_id, status, created_at) VALUES (?, ?, ?, 'ok', ?)",
                    [(i + 1, run.id, i + 1, now) for i in batch],
                )
                responses = []
                for i in batch:
                    for rank in range(6):
                        text = f"{rank} " + " ".join(words * (4 + 2 * rank))  # ~60-150 words
                        responses.append((i + 1, rank, f"r{rank}", text))
                        text_bytes += len(text.encode()) * (
                            5 - rank + rank
                        )  # each response is in 5 pairs
                db.conn.executemany(
                    "INSERT INTO syn_responses (group_id, rank, role, text) VALUES (?, ?, ?, ?)",
                    responses,
                )
        return run.id, text_bytes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run_id, text_bytes = build_store(Path(tmp) / "big.db", args.groups)
        built = time.perf_counter() - started
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(Path(tmp) / "big.db"),
                str(run_id),
                str(Path(tmp) / "pairs"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        size = sum(f.stat().st_size for f in (Path(tmp) / "pairs").glob("*.parquet"))
    print(f"store: {args.groups} groups built in {built:.1f} s")
    print(
        f"export: {result['pairs']} pairs in {result['files']} parquet shards ({size / 2**20:.0f} MiB) "
        f"in {result['seconds']:.1f} s"
    )
    print(
        f"pairs' text: {text_bytes / 2**20:.0f} MiB; peak RSS of the exporting process: "
        f"{result['peak_rss_mb']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
