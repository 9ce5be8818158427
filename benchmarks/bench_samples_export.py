"""The samples export at a million rows: does it stay streamed (bounded memory), and how fast?

Fills a store with one eval run of `--rows` sample rows (default 1,000,000: 500,000
continuations, each judged by two judges) by direct inserts (bench_store_load's builder,
with prefills of the paper's lengths),
then exports it as parquet, JSON lines and CSV, each in a fresh child process, and prints
every export's rows, seconds, rows/s, file size and the child's peak RSS, beside the peak
RSS of a child that only imports what the export imports (the floor no streaming can
lower). The issue's bound is ~200 MiB of RSS for 1M rows.

    python benchmarks/bench_samples_export.py [--rows 1000000] [--db PATH] [--keep]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store_load import JUDGES, build_store

from ccapp.store import Store

FORMATS = ("parquet", "jsonl", "csv")
RSS_BOUND_MIB = 200


def _peak_rss_mib() -> float:
    """This process's own peak RSS. VmHWM starts afresh at exec; ru_maxrss does not (a child
    forked from a large parent inherits the parent's peak), so it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _export(db: str, run_id: int, out: str, queue: multiprocessing.Queue) -> None:
    from ccapp.engines.c2eval.samples import export_samples
    from ccapp.store import Store

    started = time.perf_counter()
    with Store.open(db) as store:
        done = export_samples(store, run_id, Path(out))
    queue.put((done.rows, time.perf_counter() - started, _peak_rss_mib()))


def _imports_only(db: str, run_id: int, out: str, queue: multiprocessing.Queue) -> None:
    import pyarrow.parquet  # noqa: F401

    import ccapp.engines.c2eval.samples  # noqa: F401
    from ccapp.store import Store

    with Store.open(db):
        pass
    queue.put((0, 0.0, _peak_rss_mib()))


def in_child(target: object, db: Path, run_id: int, out: Path) -> tuple[int, float, float]:
    """(rows, seconds, peak RSS in MiB) of `target` run in a fresh process (spawned, so it
    starts without this process's memory)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(str(db), run_id, str(out), queue))
    child.start()
    rows, seconds, peak = queue.get()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"export child failed with exit code {child.exitcode}")
    return rows, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="sample rows to export")
    parser.add_argument("--db", type=Path, help="store file to build (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the store and the exports")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ccapp-bench-samples-"))
    db = args.db or folder / "bench.db"
    built = build_store(db, args.rows // len(JUDGES), runs_count=1)
    with Store.open(db) as store, store.write() as w:
        # prefills as long as the paper's: k words of ~6 characters (the builder's are short)
        w.execute(
            "UPDATE cells SET prefill = 'Sure, here is how. ' || substr(rendered_prompt, 1, k * 6)"
        )
    run_id = built.run_ids[0]
    print(
        f"store: {built.continuations:,} continuations, {built.verdicts:,} verdicts, "
        f"{built.cells:,} cells in {built.seconds:.1f} s ({db.stat().st_size / 2**20:.0f} MiB)"
    )
    _, _, floor = in_child(_imports_only, db, run_id, folder / "none")
    print(f"imports only: peak RSS {floor:.0f} MiB")
    worst = 0.0
    for fmt in FORMATS:
        out = folder / f"samples.{fmt}"
        rows, seconds, rss = in_child(_export, db, run_id, out)
        worst = max(worst, rss)
        print(
            f"{fmt:>8}: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s, "
            f"{out.stat().st_size / 2**20:.0f} MiB file, peak RSS {rss:.0f} MiB"
        )
    verdict = "within" if worst <= RSS_BOUND_MIB else "OVER"
    print(f"worst peak RSS {worst:.0f} MiB: {verdict} the {RSS_BOUND_MIB} MiB bound")
    if not args.keep:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    else:
        print(f"kept in {folder}")


if __name__ == "__main__":
    main()
