"""The store at a million continuations: are the screens' queries still interactive?

Builds a synthetic store of `--rows` continuations (default 1,000,000) spread over
`--runs` eval runs (default 50), each continuation judged by two judges (2 verdicts per
row), then times the exact functions the app calls — the history's run list, one run's
judges and Corr@k metrics, a page of the continuation browser filtered by k and verdict,
the rendered prompt of one cell — against the same functions made to read the
continuations by a full table scan (SQLite's `NOT INDEXED`), side by side in one process.
Both must return the same results; the ratio is what the indexes buy.

    python benchmarks/bench_store_load.py [--rows 1000000] [--runs 50] [--db PATH]
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store import evals as rows_store
from ccapp.store.db import utc_now

KS = (10, 20, 30, 40, 50, 60, 70, 80)
PATHS = 10
JUDGES = ("heuristic", "openai:gpt-4o")
LABELS = ("yes", "no", "unparsed", "error")

_WORDS = [
    "first",
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
    "but",
    "I",
    "cannot",
    "help",
    "with",
    "that",
    "because",
    "it",
    "could",
    "hurt",
    "someone",
    "instead",
    "here",
    "is",
    "a",
    "safer",
    "way",
    "to",
    "think",
    "about",
    "the",
    "problem",
    "you",
    "described",
]


_ITEM_COLUMNS = (
    "id",
    "run_id",
    "idx",
    "source_line",
    "request",
    "harmful_response",
    "safe_response",
)
_CELL_COLUMNS = (
    "id",
    "run_id",
    "item_id",
    "k",
    "opener",
    "prefill",
    "rendered_prompt",
    "prompt_tokens",
    "short",
)
_CONTINUATION_COLUMNS = (
    "id",
    "run_id",
    "cell_id",
    "path",
    "text",
    "new_tokens",
    "finish_reason",
    "created_at",
)
_VERDICT_COLUMNS = (
    "id",
    "continuation_id",
    "judge",
    "label",
    "score",
    "raw",
    "span_start",
    "span_end",
    "tokens_to_correction",
    "relapse",
    "created_at",
)


@dataclass(frozen=True)
class Built:
    """What a synthetic store holds, for checks and for picking runs to time."""

    run_ids: list[int]
    continuations: int
    verdicts: int
    cells: int
    seconds: float


def _texts(rng: random.Random, count: int, words: int) -> list[str]:
    """A pool of distinct texts of about `words` words each; rows reuse them by index."""
    return [" ".join(rng.choice(_WORDS) for _ in range(words)) for _ in range(count)]


def build_store(path: Path, rows: int, *, runs_count: int = 50, seed: int = 0) -> Built:
    """A store of `rows` continuations over `runs_count` finished eval runs, written fast.

    Each run gets its share of the rows as requests x KS x PATHS (a run's last cell may
    hold fewer paths): one cell per (request, k) with a rendered prompt, and a verdict
    from each of JUDGES per continuation. Rows go in with executemany, one transaction
    per run, ids assigned here so that no row has to be read back.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    prompts = _texts(rng, 97, 120)
    requests = _texts(rng, 89, 25)
    texts = _texts(rng, 211, 60)
    per_run = [rows // runs_count + (1 if r < rows % runs_count else 0) for r in range(runs_count)]
    now = utc_now()
    run_ids: list[int] = []
    item_id = cell_id = cont_id = verdict_id = 0
    with Store.open(path) as store:
        store.conn.execute("PRAGMA synchronous = OFF")  # a throwaway file: no fsync per run
        for run_index, count in enumerate(per_run):
            per_item = len(KS) * PATHS
            n_items = max(1, -(-count // per_item))
            run = runs.create_run(
                store,
                RunKind.EVAL,
                {"ks": list(KS), "paths": PATHS, "synthetic": True, "run": run_index},
                model=f"bench/model-{run_index % 7}",
                data="c2eval",
                judge=JUDGES[1],
            )
            run_ids.append(run.id)
            items: list[tuple[Any, ...]] = []
            cells: list[tuple[Any, ...]] = []
            conts: list[tuple[Any, ...]] = []
            verdicts: list[tuple[Any, ...]] = []
            yes_total = [0, 0]
            made = 0
            for idx in range(n_items):
                item_id += 1
                items.append((item_id, run.id, idx, idx + 1, requests[item_id % 89], "harm", None))
                for k in KS:
                    if made >= count:
                        break
                    cell_id += 1
                    prompt = f"<|user|>{requests[item_id % 89]}<|assistant|>{prompts[cell_id % 97]}"
                    cells.append(
                        (cell_id, run.id, item_id, k, "Sure", "Sure, " * 3, prompt, 180, 0)
                    )
                    for path_no in range(PATHS):
                        if made >= count:
                            break
                        made += 1
                        cont_id += 1
                        conts.append(
                            (
                                cont_id,
                                run.id,
                                cell_id,
                                path_no,
                                texts[cont_id % 211],
                                60,
                                "length",
                                now,
                            )
                        )
                        p_yes = 0.3 + 0.5 * k / 80
                        for j, judge in enumerate(JUDGES):
                            roll = rng.random()
                            if j == 1 and roll < 0.02:
                                label = LABELS[2 + (roll < 0.01)]
                            else:
                                label = "yes" if rng.random() < p_yes else "no"
                            yes_total[j] += label == "yes"
                            verdict_id += 1
                            corrected = label == "yes"
                            verdicts.append(
                                (
                                    verdict_id,
                                    cont_id,
                                    judge,
                                    label,
                                    None if j == 0 else rng.random(),
                                    None if j == 0 else label,
                                    12 if corrected else None,
                                    40 if corrected else None,
                                    5 if corrected else None,
                                    int(corrected and roll < 0.05),
                                    now,
                                )
                            )
            with store.write() as db:
                for table, columns, values in (
                    ("items", _ITEM_COLUMNS, items),
                    ("cells", _CELL_COLUMNS, cells),
                    ("continuations", _CONTINUATION_COLUMNS, conts),
                    ("verdicts", _VERDICT_COLUMNS, verdicts),
                ):
                    marks = ", ".join("?" * len(columns))
                    db.conn.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values
                    )
            runs.set_status(
                store,
                run.id,
                RunStatus.DONE,
                metrics={"corr_mean": round(yes_total[1] / max(1, made), 4)},
            )
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Built(run_ids, cont_id, verdict_id, cell_id, time.perf_counter() - started)


# -- the baseline: the same functions, made to find rows by scanning ----------------------

_TABLE = re.compile(
    r"\b(?:FROM|JOIN)\s+(?:continuations|verdicts|cells|items|runs)(?:\s+[a-z]\w*)?(\s+NOT INDEXED)?"
)
_ROWID = re.compile(r"\bWHERE\s+(\w+\.)?id\b")


def force_scan(sql: str) -> str:
    """`sql` with every table of its outer query read by a full scan instead of an index.

    Outer-query tables get `NOT INDEXED`, and a `WHERE … id` lookup gets a unary `+`, which
    stops SQLite using the rowid for it. Lookups joined by rowid (`c.id = t.cell_id`) and
    the correlated EXISTS subqueries are left alone: forcing those to scan would make the
    baseline quadratic, not a single scan.
    """
    out: list[str] = []
    depth = 0
    chunk = ""
    for ch in sql:
        if ch == "(" and depth == 0:
            out.append(_outer(chunk))
            chunk = ""
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        chunk += ch
        if ch == ")" and depth == 0:
            out.append(chunk)
            chunk = ""
    out.append(_outer(chunk))
    return "".join(out)


def _outer(sql: str) -> str:
    """A stretch of the outer query: its tables unindexed, its id lookups un-rowid'ed."""
    sql = _TABLE.sub(lambda m: m[0] if m[1] else f"{m[0]} NOT INDEXED", sql)
    return _ROWID.sub(r"WHERE +\1id", sql)


class _ScanConnection:
    """A connection whose `execute` runs `force_scan(sql)`; everything else passes through."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(force_scan(sql), params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def scan_store(store: Store) -> Store:
    """The same store and connection, seen through `force_scan`: the app's functions run
    unchanged on it and must return the same results, only by scanning."""
    scanning = Store.__new__(Store)
    scanning.path = store.path
    scanning.conn = _ScanConnection(store.conn)  # type: ignore[assignment]
    scanning.db = store.db
    return scanning


@contextmanager
def traced(store: Store) -> Iterator[list[str]]:
    """Every statement `store` runs inside the block, with its parameters filled in."""
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        store.conn.set_trace_callback(None)


def statement_plans(store: Store, call: Callable[[Store], object]) -> list[tuple[str, list[str]]]:
    """(statement, EXPLAIN QUERY PLAN lines) for each query `call(store)` runs.

    The plans come from a fresh connection without a statement cache: a cached EXPLAIN
    keeps the plan it was prepared with even after an index is created or dropped.
    """
    with traced(store) as seen:
        call(store)
    explain = sqlite3.connect(store.path, cached_statements=0)
    try:
        return [
            (sql, [row[3] for row in explain.execute(f"EXPLAIN QUERY PLAN {sql}")])
            for sql in seen
            if sql.lstrip().upper().startswith("SELECT")
        ]
    finally:
        explain.close()


# Keys that pin a lookup to one run, or to rows reached from one: a plan line keyed by
# none of these (say `verdicts_judge (judge=?)`) reads every run's rows of that judge.
SCOPED_KEYS = frozenset(
    {"run_id", "rowid", "id", "continuation_id", "cell_id", "item_id", "parent_id"}
)
_SEARCH_KEYS = re.compile(r"^SEARCH \S+ USING .*\((.*)\)$")


def store_wide_reads(plans: list[tuple[str, list[str]]]) -> list[str]:
    """The plan lines whose work grows with the whole store rather than with one run:
    full scans (`SCAN t`, also of a whole index), throwaway automatic indexes, and index
    searches keyed by nothing in SCOPED_KEYS."""
    wide = set()
    for _, lines in plans:
        for line in lines:
            if line.startswith("SCAN ") or "AUTOMATIC" in line:
                wide.add(line)
            elif line.startswith("SEARCH "):
                match = _SEARCH_KEYS.match(line)
                keys = (
                    {re.split(r"\W", part, maxsplit=1)[0] for part in match[1].split(" AND ")}
                    if match
                    else set()
                )
                if not keys & SCOPED_KEYS:
                    wide.add(line)
    return sorted(wide)


# -- what the app calls ------------------------------------------------------------------

PAGE = 100  # the run screen's page size (ccapp.screens.run_detail.PAGE)


def overview(store: Store, run_id: int) -> tuple[Any, ...]:
    """What the run screen loads when it opens (RunDetailScreen.load_overview)."""
    from ccapp.engines.c2eval.report import run_metrics

    run = runs.get_run(store, run_id)
    judges = rows_store.judges_of(store, run.id)
    metrics = {judge: run_metrics(store, run, judge) for judge in judges}
    return run, metrics, rows_store.usage(store, run.id), runs.lineage(store, run.id)


def corr_at_k(store: Store, run_id: int, judge: str) -> dict[str, Any]:
    """One judge's Corr@k, Corr_mean and intervals, as the run and compare screens get them."""
    from ccapp.engines.c2eval.report import run_metrics

    return run_metrics(store, runs.get_run(store, run_id), judge)


@dataclass(frozen=True)
class Case:
    """One thing a screen does, as the exact store calls it makes."""

    name: str
    call: Callable[[Store], object]


def app_cases(store: Store, run_id: int) -> list[Case]:
    """The screens' reads on run `run_id`: history, run overview, browser pages, a prompt."""
    judge = JUDGES[1]
    k_yes = rows_store.BrowseFilter(k=KS[2], judge=judge, label="yes")
    disagree = rows_store.BrowseFilter(judge=judge, disagree=(JUDGES[0], judge))
    first, _ = rows_store.browse(store, run_id, rows_store.BrowseFilter(), limit=PAGE)
    cell_id = first[len(first) // 2].cell_id
    return [
        Case("history: runs list", lambda s: runs.list_runs(s)),
        Case("run screen: judges + Corr@k of each", lambda s: overview(s, run_id)),
        Case(f"Corr@k, one judge ({judge})", lambda s: corr_at_k(s, run_id, judge)),
        Case(
            "browser: first page, no filter",
            lambda s: rows_store.browse(s, run_id, rows_store.BrowseFilter(), limit=PAGE),
        ),
        Case(
            f"browser: page 3, k={KS[2]} + verdict yes",
            lambda s: rows_store.browse(s, run_id, k_yes, limit=PAGE, offset=2 * PAGE),
        ),
        Case(
            "browser: page 1, judges disagree",
            lambda s: rows_store.browse(s, run_id, disagree, limit=PAGE),
        ),
        Case(
            "rendered prompt of a browsed row",
            lambda s: rows_store.cell(s, cell_id).rendered_prompt,  # type: ignore[union-attr]
        ),
    ]


def _median_ms(call: Callable[[Store], object], store: Store, repeat: int) -> tuple[float, object]:
    result = call(store)  # warm-up: the first call pays for pages not yet in the cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call(store)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="continuations in all")
    parser.add_argument("--runs", type=int, default=50, help="eval runs they are spread over")
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per app query")
    parser.add_argument("--scan-repeat", type=int, default=3, help="timed calls per full scan")
    parser.add_argument(
        "--db",
        type=Path,
        help="build the store here and keep it; an existing file (one this benchmark built) "
        "is reused as it is",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        path = args.db or Path(tmp) / "load.db"
        if path.exists():
            print(f"reusing {path}")
        else:
            built = build_store(path, args.rows, runs_count=args.runs)
            print(
                f"built {built.continuations:,} continuations, {built.verdicts:,} verdicts, "
                f"{built.cells:,} cells in {len(built.run_ids)} runs in {built.seconds:.1f} s "
                f"(peak RSS so far {_peak_rss_mib():.0f} MiB)"
            )
        return _measure(path, args.repeat, args.scan_repeat)


def _measure(path: Path, repeat: int, scan_repeat: int) -> int:
    with Store.open(path) as store:
        run_ids = [r.id for r in runs.list_runs(store)]
        run_id = sorted(run_ids)[len(run_ids) // 2]
        total = store.conn.execute("SELECT count(*) FROM continuations").fetchone()[0]
        in_run = rows_store.count_continuations(store, run_id)
        size = path.stat().st_size / 2**20
        print(
            f"store {path.name}: {total:,} continuations in {len(run_ids)} runs, {size:,.0f} MiB; "
            f"timing run {run_id} ({in_run:,} continuations); median of {repeat} calls "
            f"(full scan: {scan_repeat}), after one warm-up call each\n"
        )
        scanning = scan_store(store)
        header = (
            f"{'what the app does':40} {'app ms':>9} {'full scan ms':>13} {'ratio':>8}  "
            f"{'app plan':20} full-scan plan"
        )
        print(header)
        print("-" * len(header))
        failures = 0
        for case in app_cases(store, run_id):
            app_ms, app_result = _median_ms(case.call, store, repeat)
            scan_ms, scan_result = _median_ms(case.call, scanning, scan_repeat)
            scans = store_wide_reads(statement_plans(store, case.call))
            forced = store_wide_reads(statement_plans(scanning, case.call))
            plan = ", ".join(scans) if scans else "indexed, per run"
            if app_result != scan_result:
                failures += 1
                plan += " (RESULTS DIFFER)"
            print(
                f"{case.name:40} {app_ms:9.2f} {scan_ms:13.2f} {scan_ms / app_ms:7.1f}x  "
                f"{plan:20} {', '.join(forced)}"
            )
        print(f"\npeak RSS {_peak_rss_mib():.0f} MiB (this process: build, queries and scans)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
