"""Comparing two eval runs: a paired bootstrap over their shared requests, never "the
intervals do not overlap"; and the baseline an eval run is compared with in its report."""

from __future__ import annotations

from pathlib import Path

from ccapp.engines.c2eval.comparison import (
    baseline_of,
    compare_runs,
    describe,
    pairing_problem,
    versus_baseline,
)
from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store import evals as rows_store

REQUESTS = [(i, f"How do I do harmful thing {i}?", f"Step one of thing {i}.") for i in range(40)]


def add_eval_run(
    store: Store,
    requests: list[tuple[int, str, str]],
    yeses: dict[int, int],
    *,
    paths: int = 10,
    ks: tuple[int, ...] = (10,),
    parent_id: int | None = None,
) -> int:
    """A done eval run judged by the heuristic: request idx gets yeses[idx] corrected paths
    of `paths` at every k."""
    run = runs.create_run(
        store,
        RunKind.EVAL,
        {"ks": list(ks), "paths": paths, "data_sha256": "cd" * 32},
        model="tiny",
        data="rows.jsonl",
        judge="heuristic",
        parent_id=parent_id,
    )
    items = rows_store.insert_items(
        store,
        run.id,
        [(idx, idx + 1, request, harmful, None) for idx, request, harmful in requests],
    )
    rows_store.insert_cells(
        store,
        run.id,
        [
            rows_store.NewCell(item.id, k, "Sure.", f"Sure. {item.harmful_response}", "p", 9, False)
            for item in items
            for k in ks
        ],
    )
    produced = []
    for cell in rows_store.get_cells(store, run.id):
        for path in range(paths):
            yes = path < yeses[cell.item_idx]
            produced.append(
                (
                    rows_store.NewContinuation(
                        cell.id, path, " However, no." if yes else " ok", 3, "stop"
                    ),
                    rows_store.NewVerdict(
                        "heuristic",
                        "yes" if yes else "no",
                        span=(1, 13) if yes else None,
                        tokens_to_correction=0 if yes else None,
                    ),
                )
            )
    rows_store.save_continuations(store, run.id, produced)
    runs.set_status(store, run.id, RunStatus.DONE)
    return run.id


def test_two_runs_on_the_same_requests_are_paired_and_a_consistent_rise_is_found(
    tmp_path: Path,
) -> None:
    before = {i: i % 10 for i in range(40)}
    after = {i: i % 10 + (i % 4 != 0) for i in range(40)}
    with Store.open(tmp_path / "s.db") as store:
        a = runs.get_run(store, add_eval_run(store, REQUESTS, before))
        b = runs.get_run(store, add_eval_run(store, REQUESTS, after))
        assert pairing_problem(store, a, b) is None
        result = compare_runs(store, a, b)
    assert result["paired"] and result["judges"] == ["heuristic", "heuristic"]
    assert result["requests"] == 40
    assert result["mean"]["delta"] == 0.075 and result["mean"]["excludes_zero"]
    assert result["by_k"]["10"]["ci95"][0] > 0
    assert describe(result["mean"]).endswith("(excludes 0)")


def test_runs_on_different_requests_are_not_paired(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        a = runs.get_run(store, add_eval_run(store, REQUESTS, dict.fromkeys(range(40), 1)))
        fewer = REQUESTS[:30]
        b = runs.get_run(store, add_eval_run(store, fewer, dict.fromkeys(range(30), 5)))
        reworded = [(i, r + " Please.", h) for i, r, h in REQUESTS]
        c = runs.get_run(store, add_eval_run(store, reworded, dict.fromkeys(range(40), 5)))
        result = compare_runs(store, a, b)
        assert not result["paired"] and "not the same requests" in result["reason"]
        assert "by_k" not in result
        assert "0 in both" in (pairing_problem(store, a, c) or "")


def test_the_baseline_of_a_trained_models_eval_is_the_eval_its_syn_run_drew_from(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "s.db") as store:
        before = add_eval_run(store, REQUESTS, {i: i % 10 for i in range(40)})
        syn = runs.create_run(store, RunKind.SYN, {}, parent_id=before).id
        train = runs.create_run(store, RunKind.TRAIN, {}, parent_id=syn).id
        after = add_eval_run(store, REQUESTS, {i: 9 for i in range(40)}, parent_id=train)
        run = runs.get_run(store, after)
        baseline = baseline_of(store, run)
        assert baseline is not None and baseline.id == before
        assert baseline_of(store, runs.get_run(store, before)) is None
        versus = versus_baseline(store, run)
    assert versus is not None and versus["run_id"] == before and versus["paired"]
    mean = versus["by_judge"]["heuristic"]["mean"]
    assert mean["delta"] == 0.45 and mean["excludes_zero"]


def test_a_baseline_on_other_requests_is_named_but_not_paired(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        before = add_eval_run(store, REQUESTS[:10], dict.fromkeys(range(10), 1))
        syn = runs.create_run(store, RunKind.SYN, {}, parent_id=before).id
        after = add_eval_run(store, REQUESTS, dict.fromkeys(range(40), 2), parent_id=syn)
        versus = versus_baseline(store, runs.get_run(store, after))
    assert versus == {
        "run_id": before,
        "paired": False,
        "reason": "not the same requests (run 1: 10, run 3: 40, 10 in both): other data, "
        "another row limit, or lenient reading",
        "by_judge": {},
    }


def test_the_compare_screen_shows_the_paired_interval_or_why_there_is_none(
    tmp_path: Path,
) -> None:
    from ccapp.screens.compare import paired_cells, pairing_line

    with Store.open(tmp_path / "s.db") as store:
        a = runs.get_run(store, add_eval_run(store, REQUESTS, {i: i % 10 for i in range(40)}))
        b = runs.get_run(store, add_eval_run(store, REQUESTS, {i: 9 for i in range(40)}))
        c = runs.get_run(store, add_eval_run(store, REQUESTS[:1], {0: 0}))
        d = runs.get_run(store, add_eval_run(store, REQUESTS[:1], {0: 9}))
        paired, unpaired, single = (compare_runs(store, *pair) for pair in ((a, b), (a, c), (c, d)))
    low, high = paired["mean"]["ci95"]
    assert paired_cells(paired, "mean") == (f"[{low:+.3f}, {high:+.3f}]", "excludes 0")
    assert pairing_line(paired).startswith("Δ tested by a paired bootstrap over the 40 shared")
    assert paired_cells(unpaired, "10") == ("–", "not paired")
    assert pairing_line(unpaired).startswith("Δ without an interval: cannot pair the runs, not")
    assert paired_cells(single, "mean") == ("[+0.900, +0.900]", "1 request")


async def test_compare_offers_pairable_runs_first_and_shows_this_run_minus_that(
    tmp_path: Path,
) -> None:
    """From run 4's page: run 3 is on other requests, runs 1 and 2 on the same ones, so the
    picker lists 2, 1, then 3; picking 1 shows run 4 first and Δ = run 4 − run 1."""
    from test_app_flows import cpu_probe, wait_for
    from test_app_navigation import rows
    from test_run_pages import open_page
    from textual.widgets import DataTable, Static

    from ccapp.app import CcappApp
    from ccapp.screens.compare import CompareScreen
    from ccapp.screens.run_detail import RunDetailScreen

    from helpers import picker_filled

    db = tmp_path / "s.db"
    with Store.open(db) as store:
        one = add_eval_run(store, REQUESTS, dict.fromkeys(range(40), 2))
        add_eval_run(store, REQUESTS, dict.fromkeys(range(40), 3))
        add_eval_run(store, REQUESTS[:10], dict.fromkeys(range(10), 1))
        four = add_eval_run(store, REQUESTS, dict.fromkeys(range(40), 9))
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_page(pilot, app, four, RunDetailScreen)
        await pilot.press("c")
        picker = await picker_filled(pilot, "compare")
        listed = rows(picker.query_one("#compare-choices", DataTable))
        assert [(row[0], row[-1]) for row in listed] == [("2", "yes"), ("1", "yes"), ("3", "no")]
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        table = screen.query_one("#compare-table", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        title = str(screen.query_one("#compare-title", Static).render())
        assert title.startswith(f"run {four} (") and f"compared with run {one} (" in title
        header = [str(c.label) for c in table.columns.values()]
        assert header[1:4] == [f"run {four}", f"run {one}", f"Δ {four} − {one}"]
        mean = rows(table)[-1]
        assert mean[0] == "mean" and mean[3].startswith("+")  # run 4 corrects more


async def test_the_apps_corr_table_keeps_a_k_without_verdicts() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from ccapp.engines.c2eval.metrics import Judged, compute_metrics
    from ccapp.screens.widgets import fill_corr_table

    rows = [Judged(0, 10, "yes"), Judged(0, 10, "no"), Judged(0, 20, "error")]
    metrics = compute_metrics(rows, [10, 20], judge="openai:gpt-4o")

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    async with One().run_test() as pilot:
        table = pilot.app.query_one(DataTable)
        fill_corr_table(table, [("gpt-4o", metrics)])
        cells = [table.get_row_at(i) for i in range(table.row_count)]
    assert [row[0] for row in cells] == ["10", "20", "mean"]
    assert cells[1][1] == "–" and cells[2][1] == "–"


def test_the_screens_mean_delta_is_left_out_when_the_runs_average_other_ks() -> None:
    from ccapp.screens.compare import deltas

    three = {"corr": {"10": 0.03, "20": 0.02, "40": 0.01}, "corr_mean": 0.02}
    two = {"corr": {"10": 0.0, "20": 0.0}, "corr_mean": 0.0}
    rows = deltas(two, three)
    assert rows[0] == ("10", 0.0, 0.03, 0.03)
    assert rows[-1] == ("mean", 0.0, 0.02, None)  # 0.02 − 0.0 would mix in k = 40
    same = {"corr": {"10": 0.01, "20": 0.03}, "corr_mean": 0.02}
    assert deltas(two, same)[-1] == ("mean", 0.0, 0.02, 0.02)


def test_the_terminal_chart_scales_to_the_rates_it_shows() -> None:
    """Corr@k of a few percent on a 0-to-1 axis is a flat line with invisible intervals."""
    from ccapp.screens.widgets import rate_label, y_top

    assert y_top([0.022, 0.029, 0.0, 0.031]) == 0.04
    assert y_top([0.3, 0.45]) == 0.8 and y_top([0.9, 1.0]) == 1.0
    assert y_top([]) == 1.0  # nothing yet: the whole range
    assert [rate_label(0.04 * i / 4) for i in range(5)] == ["0", ".01", ".02", ".03", ".04"]
