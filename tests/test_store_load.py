"""A big store stays interactive: every read the history and run screens make is an index
lookup, and the continuation browser pages exactly.

The store is built by benchmarks/bench_store_load.py's builder (20K continuations here, 1M
there) and the screens' reads are that benchmark's cases, so the plans pinned here are the
ones it times. How fast they are is the benchmark's business; this file is the specification.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ccapp.store import Store, runs
from ccapp.store import evals as rows_store
from ccapp.store.records import Continuation

REPO = Path(__file__).resolve().parents[1]
ROWS = 20_000
RUNS = 10


def _load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_store_load", REPO / "benchmarks" / "bench_store_load.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("load") / "load.db"
    bench.build_store(path, ROWS, runs_count=RUNS)
    return path


@pytest.fixture
def store(loaded: Path) -> Iterator[Store]:
    with Store.open(loaded) as opened:
        yield opened


def middle_run(store: Store) -> int:
    ids = sorted(r.id for r in runs.list_runs(store))
    return ids[len(ids) // 2]


def test_the_builder_writes_the_store_it_promises(store: Store) -> None:
    """Every run is a finished eval run with its share of the rows and two verdicts a row,
    so the plans below are checked against a store shaped like a real one."""
    listed = runs.list_runs(store)
    assert len(listed) == RUNS and all(r.status.value == "done" for r in listed)
    assert {rows_store.count_continuations(store, r.id) for r in listed} == {ROWS // RUNS}
    counts = store.conn.execute(
        "SELECT count(*), count(DISTINCT continuation_id) FROM verdicts"
    ).fetchone()
    assert counts == (2 * ROWS, ROWS)
    run_id = middle_run(store)
    assert rows_store.judges_of(store, run_id) == sorted(bench.JUDGES)
    assert {c.k for c in rows_store.get_cells(store, run_id)} == set(bench.KS)


def run_screen_cases(store: Store) -> list[Any]:
    return [
        c for c in bench.app_cases(store, middle_run(store)) if not c.name.startswith("history")
    ]


def test_every_read_the_run_screen_makes_is_an_index_lookup_within_the_run(store: Store) -> None:
    """Judges, Corr@k, browser pages under each filter and the rendered prompt: no plan
    scans a table or a whole index, builds a throwaway index, or searches an index by a
    key that spans runs (every verdict of one judge), so their cost follows the run,
    never the whole store."""
    cases = run_screen_cases(store)
    assert len(cases) == 6
    for case in cases:
        plans = bench.statement_plans(store, case.call)
        assert plans, case.name
        assert bench.store_wide_reads(plans) == [], (case.name, plans)


def test_the_plan_check_catches_a_lost_index(store: Store, tmp_path: Path) -> None:
    """Without the continuations-by-run index the same reads scan continuations or walk
    every verdict of a judge, and the check above says so: it is not a check that cannot fail."""
    copy = tmp_path / "no-index.db"
    with sqlite3.connect(copy) as target:
        store.conn.backup(target)
    with Store.open(copy) as damaged:
        damaged.conn.execute("DROP INDEX continuations_run")
        wide = {
            case.name: bench.store_wide_reads(bench.statement_plans(damaged, case.call))
            for case in run_screen_cases(damaged)
        }
    assert wide["browser: first page, no filter"] == ["SCAN t"]
    assert any(
        "verdicts_judge (judge=?)" in line for line in wide["Corr@k, one judge (openai:gpt-4o)"]
    )


def test_the_history_reads_only_the_runs_table(store: Store) -> None:
    """The runs list scans the runs table, one row a run with Corr_mean stored in it; it
    never reads a continuation or verdict, however many the runs hold."""
    (history,) = [
        c for c in bench.app_cases(store, middle_run(store)) if c.name.startswith("history")
    ]
    plans = bench.statement_plans(store, history.call)
    assert bench.store_wide_reads(plans) == ["SCAN runs"]
    assert all("continuations" not in sql and "verdicts" not in sql for sql, _ in plans)


def _expected(everything: list[Continuation], flt: rows_store.BrowseFilter) -> list[Continuation]:
    """The filter's meaning, applied in Python to every continuation of the run."""

    def keep(c: Continuation) -> bool:
        if flt.k is not None and c.k != flt.k:
            return False
        if flt.judge is not None and flt.label is not None:
            verdict = c.verdicts.get(flt.judge)
            if verdict is None or verdict.label != flt.label:
                return False
        if flt.disagree is not None:
            a, b = (c.verdicts.get(j) for j in flt.disagree)
            labels = {"yes", "no"}
            if a is None or b is None or a.label not in labels or b.label not in labels:
                return False
            if a.label == b.label:
                return False
        return True

    return sorted((c for c in everything if keep(c)), key=lambda c: c.id)


@pytest.mark.parametrize(
    "flt",
    [
        rows_store.BrowseFilter(),
        rows_store.BrowseFilter(k=30),
        rows_store.BrowseFilter(k=30, judge="openai:gpt-4o", label="yes"),
        rows_store.BrowseFilter(judge="openai:gpt-4o", label="unparsed"),
        rows_store.BrowseFilter(judge="openai:gpt-4o", disagree=("heuristic", "openai:gpt-4o")),
    ],
    ids=["all", "k", "k-and-verdict", "unparsed", "disagree"],
)
def test_browser_pages_hold_every_matching_row_once_in_id_order(
    store: Store, flt: rows_store.BrowseFilter
) -> None:
    """Turning pages with `]` walks the filtered rows exactly: full pages, the same total on
    each, no row twice or missed, and an empty page past the end."""
    run_id = middle_run(store)
    expected = _expected(rows_store.continuations(store, run_id), flt)
    assert expected, "the builder's data must give every filter something to show"
    limit = 37
    seen: list[Continuation] = []
    offset = 0
    while True:
        page, total = rows_store.browse(store, run_id, flt, limit=limit, offset=offset)
        assert total == len(expected)
        assert len(page) == min(limit, max(0, total - offset))
        if not page:
            break
        seen += page
        offset += limit
    assert seen == expected


def test_the_benchmarks_full_scan_baseline_really_scans_and_agrees(store: Store) -> None:
    """The benchmark's baseline runs the same app functions with indexes forbidden: their
    plans must scan, and they must return exactly what the indexed reads return, or its
    ratios would compare different work."""
    scanning = bench.scan_store(store)
    for case in run_screen_cases(store):
        forced = bench.store_wide_reads(bench.statement_plans(scanning, case.call))
        assert any(line.split()[1] in {"t", "v", "c", "verdicts"} for line in forced), (
            case.name,
            forced,
        )
        assert case.call(scanning) == case.call(store), case.name
