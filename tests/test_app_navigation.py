"""The app's shell, driven by Pilot: mode keys that never show a stale page, quitting that never
ends a job unasked, runs whose process is gone read as interrupted, focus and row keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from test_app_flows import cpu_probe, wait_for
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Input, ProgressBar, RichLog

from ccapp.app import CcappApp
from ccapp.engines.events import parse_event
from ccapp.screens.compare import CompareScreen
from ccapp.screens.eval_form import EvalFormScreen, FormValues
from ccapp.screens.form_memory import memory_file, recall, remember
from ccapp.screens.history import HistoryScreen
from ccapp.screens.jobs import JobEvent, ReplayJob
from ccapp.screens.live_run import LiveRunScreen
from ccapp.screens.modals import ChoiceModal, ConfirmModal, PromptModal
from ccapp.screens.run_detail import RunDetailScreen
from ccapp.screens.widgets import tail
from ccapp.store import RunKind, RunStatus, Store, runs

from helpers import build_fixed_store, picker_filled, run_ccapp


def started(run_id: int, continuations: int = 4, todo: int = 4) -> dict[str, Any]:
    return {
        "event": "run_started",
        "run_id": run_id,
        "v": 1,
        "kind": "eval",
        "config": {"model": "tiny", "judge": "heuristic", "paths": 2},
        "totals": {"requests": 2, "cells": 2, "continuations": continuations, "todo": todo},
    }


def live(db: Path, events: list[dict[str, Any]], hold: bool = False) -> LiveRunScreen:
    return LiveRunScreen(ReplayJob(events, hold=hold), "ccapp eval tiny", db)


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def rows(table: DataTable[Any]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


# --- bug 1: mode keys reach the mode's own page, fresh -------------------------------------


async def test_f2_after_a_finished_run_opens_a_new_form_not_the_run(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        form = app.screen
        assert isinstance(form, EvalFormScreen)
        screen = live(db, [started(1), {"event": "run_finished", "run_id": 1, "status": "done"}])
        app.push_screen(screen)  # as the form's launch does
        await wait_for(pilot, lambda: screen.finished)
        await pilot.press("f1")
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, EvalFormScreen) and app.screen is not form
        await pilot.press("h", "e")  # the letters too
        await pilot.pause()
        assert isinstance(app.screen, EvalFormScreen)


async def test_f2_while_a_job_runs_leaves_it_running_one_key_away(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        job = ReplayJob([started(1)], hold=True)
        screen = LiveRunScreen(job, "ccapp eval tiny", db)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.state.status == "running")
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, EvalFormScreen)
        assert not job._cancelled.is_set() and screen.is_attached  # still running
        await pilot.press("f3")
        await pilot.press("f6")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.finished)
        assert screen.state.status == "paused"


async def test_f3_from_a_run_page_shows_the_runs_list(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        table = app.screen.query_one("#history-runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)


async def test_the_palette_new_evaluation_opens_a_new_form(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        screen = live(db, [started(1), {"event": "run_finished", "run_id": 1, "status": "done"}])
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.finished)
        await pilot.press("ctrl+p")
        await pilot.pause()
        for key in "new evaluation":
            await pilot.press("space" if key == " " else key)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalFormScreen))


async def test_text_typed_into_the_filter_never_switches_mode(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3", "slash", *"/train", "h", "e", "q")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        assert app.screen.query_one("#history-filter", Input).value == "/trainheq"


async def test_home_shows_the_stores_runs_as_soon_as_it_is_shown_again(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store.open(db).close()
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("f3")
        build_fixed_store(db)
        await pilot.press("f1")
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, timeout=1.5)  # sooner than its timer


async def test_back_in_the_runs_list_a_run_started_meanwhile_is_highlighted(
    tmp_path: Path,
) -> None:
    """`r` acts on the highlighted row: after starting (and pausing) a run elsewhere, the
    list must not still point at the old run, or `r` resumes the wrong one."""
    db = tmp_path / "s.db"
    build_fixed_store(db)
    build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        table = history.query_one("#history-runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("down")  # the older run
        assert history.selected_run_id() == 1
        await pilot.pause(0.3)
        assert history.selected_run_id() == 1  # a refresh while here keeps the cursor
        await pilot.press("f1")
        third = build_fixed_store(db)
        await pilot.press("f3")
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.pause(0.2)
        assert app.screen is history and history.selected_run_id() == third


# --- bug 2: quitting asks; a run whose process is gone reads as interrupted -----------------


async def test_q_while_a_job_runs_asks_then_stops_it_resumable(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = live(db, [started(1)], hold=True)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.state.status == "running")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        assert isinstance(app.screen, ChoiceModal)
        # it names the run, and that keeping it running still quits the app
        assert "A job is running (run 1)" in app.screen.question
        assert "Quit, keep running (b)" in [str(b.label) for b in app.screen.query("Button")]
        await pilot.press("escape")  # stay
        await pilot.pause()
        assert app.screen is screen and not screen.finished
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running)
    assert screen.state.status == "paused"


async def test_q_can_leave_the_job_running_in_the_background(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    job = ReplayJob([started(1)], hold=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = LiveRunScreen(job, "ccapp eval tiny", db)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.state.status == "running")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("b")
        await wait_for(pilot, lambda: not app.is_running)
    assert not job._cancelled.is_set()  # never asked to stop


async def test_q_without_a_job_quits_at_once(tmp_path: Path) -> None:
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test() as pilot:
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, timeout=5)
    assert app.return_code == 0


async def test_a_run_whose_process_is_gone_is_shown_interrupted_never_running(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    with Store.open(db) as store:
        with store.write() as conn:
            conn.execute(
                "UPDATE runs SET status = 'running', pid = ? WHERE id = ?", [dead_pid(), run_id]
            )
        run = runs.get_run(store, run_id)
        assert run.status is RunStatus.PAUSED and run.status.resumable
        assert runs.interrupted(run) and runs.status_text(run) == "interrupted"
        alive = runs.create_run(store, RunKind.EVAL, {}, model="m")  # this process: alive
        assert runs.get_run(store, alive.id).status is RunStatus.RUNNING
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        home = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: home.row_count == 2)
        assert [row[2] for row in rows(home)] == ["running", "interrupted"]
        await pilot.press("f3")
        history = app.screen.query_one("#history-runs", DataTable)
        await wait_for(pilot, lambda: history.row_count == 2)
        assert [row[2] for row in rows(history)] == ["running", "interrupted"]
    listed = run_ccapp("runs", "list", "--db", str(db))
    listed_status = {
        line.split("\t")[0]: line.split("\t")[2] for line in listed.stdout.splitlines()
    }
    assert listed_status[str(run_id)] == "interrupted"


# --- bug 3: the per-k done column after a resume starts from the store ------------------------


async def test_the_per_k_done_column_counts_what_was_stored_before_a_resume(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)  # 2 requests × k 10, 20 × 2 paths, all stored
    with Store.open(db) as store, store.write() as conn:
        missing = conn.execute(
            "SELECT t.cell_id FROM continuations t JOIN cells c ON c.id = t.cell_id "
            "WHERE c.k = 20 AND t.path = 1"
        ).fetchall()
        conn.execute(
            "DELETE FROM continuations WHERE path = 1 AND cell_id IN "
            "(SELECT id FROM cells WHERE k = 20)"
        )
    events: list[dict[str, Any]] = [started(run_id, continuations=8, todo=2)]
    for (cell_id,) in missing:
        events.append(
            {
                "event": "continuation_done",
                "run_id": run_id,
                "cell_id": cell_id,
                "item": 0,
                "k": 20,
                "path": 1,
                "text": " then turn it.",
                "verdict": {"judge": "heuristic", "label": "no", "span": None, "relapse": False},
            }
        )
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = live(db, events, hold=True)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.state.done_per_k.get(20) == 4 and not screen._dirty)
        table = screen.query_one("#live-per-k", DataTable)
        assert [row[:2] for row in rows(table)] == [["10", "4/4"], ["20", "4/4"]]


def done(run_id: int, cell_id: int, path: int) -> dict[str, Any]:
    return {
        "event": "continuation_done",
        "run_id": run_id,
        "cell_id": cell_id,
        "item": 0,
        "k": 10,
        "path": path,
        "text": " and so on.",
        "verdict": {"judge": "heuristic", "label": "no", "span": None, "relapse": False},
    }


async def test_a_batch_being_written_shows_before_it_is_stored_and_cancel_says_its_cost(
    tmp_path: Path,
) -> None:
    """A batch is stored whole: a real model on a CPU writes for a minute with the count of
    continuations at 0, so the view counts the paths being written, the bar pulses instead
    of standing at 0%, and cancelling says that those are dropped (a resume writes them
    again) while the stored ones stay."""
    tokens = {"event": "tokens", "run_id": 1, "deltas": [[1, 0, " Step"], [1, 1, " First"]]}
    more = {"event": "tokens", "run_id": 1, "deltas": [[2, 0, " Then"]]}
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = live(tmp_path / "s.db", [started(1), tokens, more], hold=True)
        app.push_screen(screen)
        await wait_for(pilot, lambda: len(screen.state.streams) == 3 and not screen._dirty)
        assert "0/4 continuations · 3 being written" in str(screen.query_one("#live-rate").render())
        assert screen.query_one("#live-progress", ProgressBar).total is None
        screen.post_message(JobEvent(parse_event(done(1, 1, 0))))  # one path is stored
        await wait_for(pilot, lambda: len(screen.state.writing) == 2 and not screen._dirty)
        assert "1/4 continuations · 2 being written" in str(screen.query_one("#live-rate").render())
        assert screen.query_one("#live-progress", ProgressBar).total == 4
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        question = app.screen.question  # type: ignore[attr-defined]
        assert "The 2 continuations being written now are dropped" in question
        assert "written again on resume; the 1 stored stay" in question
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.finished)
        assert "being written" not in str(screen.query_one("#live-rate").render())


async def test_a_second_job_is_started_beside_a_running_one_only_when_asked_and_f6_goes_between(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        first = live(db, [started(1)], hold=True)
        app.launch(first)
        await wait_for(pilot, lambda: first.state.run_id == 1)
        second = live(db, [started(2)], hold=True)
        app.launch(second)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        question = app.screen.question  # type: ignore[attr-defined]
        assert "run 1 is still running" in question and "F6" in question
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is first and second not in app.screen_stack
        app.launch(second)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: second.state.run_id == 2)
        assert app.screen is second
        await pilot.press("f6")  # from one running job's view to the other's, and back
        await wait_for(pilot, lambda: app.screen is first)
        await pilot.press("f6")
        await wait_for(pilot, lambda: app.screen is second)
        for job in (first, second):
            job.job.cancel()
        await wait_for(pilot, lambda: first.finished and second.finished)


async def test_f6_before_any_job_says_how_to_start_one(tmp_path: Path) -> None:
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert any("No job has run in this session yet" in m and "F2" in m for m in said)


# --- focus and row keys ------------------------------------------------------------------


async def test_home_focuses_the_runs_and_enter_opens_the_highlighted_one(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = build_fixed_store(db)
    build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert app.focused is table
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run_id == first


async def test_down_from_the_history_filter_moves_into_the_list(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3", "slash")
        assert isinstance(app.focused, Input)
        await pilot.press("down")
        assert app.focused is app.screen.query_one("#history-runs", DataTable)


async def test_run_page_keys_work_on_a_highlighted_row_in_history(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = build_fixed_store(db)
    second = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        table = app.screen.query_one("#history-runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("x")  # export asks where
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        await pilot.press("escape")
        await pilot.press("j")  # re-judge offers the judges
        await picker_filled(pilot, "judge")
        await pilot.press("escape")
        await pilot.press("c")  # compare offers the comparable runs
        choices = (await picker_filled(pilot, "compare")).query_one("#compare-choices", DataTable)
        assert [row[0] for row in rows(choices)] == [str(first)]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        # the run asked from (the highlighted one: the newest) is the one Δ is of
        assert isinstance(app.screen, CompareScreen) and app.screen.ids == (first, second)
        await pilot.press("escape")
        await pilot.press("d")  # delete asks first, then the list follows
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await pilot.pause()
        with Store.open(db) as store:
            assert len(runs.list_runs(store)) == 2
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1)
    with Store.open(db) as store:
        assert [r.id for r in runs.list_runs(store)] == [first]


# --- the eval form opens at its top and remembers; paths show their tail ----------------------


async def test_the_eval_form_opens_at_its_top_with_the_last_values(tmp_path: Path) -> None:
    remember("eval", FormValues(data="rows.jsonl", ks="10,20"))
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(90, 24)) as pilot:
        await pilot.press("f2")
        await pilot.pause(0.3)
        assert app.screen.query_one("#form", VerticalScroll).scroll_y == 0
        assert app.screen.query_one("#data", Input).value == "rows.jsonl"
        assert app.screen.query_one("#ks", Input).value == "10,20"


async def test_the_data_fields_say_where_data_comes_from_and_when_that_needs_the_network(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "hub" / "datasets--org--cached").mkdir(parents=True)
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_text("")
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        form = app.screen
        note = lambda: str(form.query_one("#field-data .hint").render())  # noqa: E731
        assert form.query_one("#data", Input).value == "c2-eval"
        assert "c2-eval: not cached yet" in note() and "needs the network" in note()
        form.query_one("#data", Input).value = "org/other:train"
        await pilot.pause()
        assert note().startswith("org/other: not in the Hub cache") and "offline" in note()
        form.query_one("#data", Input).value = "org/cached"
        await pilot.pause()
        assert note() == "org/cached: from the Hugging Face Hub's cache on this machine"
        form.query_one("#data", Input).value = str(rows_file)
        await pilot.pause()
        assert "needs the network" not in note()
        await pilot.press("f4")  # the syn form's default is the Hub's PKU-SafeRLHF
        await pilot.pause()
        syn_note = str(app.screen.query_one("#syn-field-data .hint").render())
        assert syn_note.startswith("PKU-Alignment/PKU-SafeRLHF: not in the Hub cache")


async def test_the_syn_and_train_forms_remember_all_but_the_runs_they_name(
    tmp_path: Path,
) -> None:
    from ccapp.screens.syn import SynValues
    from ccapp.screens.train import TrainValues

    remember("syn", SynValues(data="rows.jsonl", limit="3", from_run="7"))
    remember("train", TrainValues(pairs="5", beta="0.2", output="/tmp/old-model"))
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        assert app.screen.query_one("#syn-data", Input).value == "rows.jsonl"
        assert app.screen.query_one("#syn-limit", Input).value == "3"
        assert app.screen.query_one("#syn-from_run", Input).value == ""
        await pilot.press("f5")
        await pilot.pause()
        assert app.screen.query_one("#train-beta", Input).value == "0.2"
        assert app.screen.query_one("#train-pairs", Input).value == ""
        assert app.screen.query_one("#train-output", Input).value == ""


def test_form_memory_keeps_no_secrets_and_survives_a_broken_file() -> None:
    remember("eval", FormValues(model="/models/smollm2", judge_url="http://h:8000/v1"))
    assert recall("eval", FormValues).model == "/models/smollm2"
    memory_file("eval").write_text('{"model": "m", "api_key": "sk-x", "nope": 1}')
    assert recall("eval", FormValues) == FormValues(model="m")
    memory_file("eval").write_text("not json")
    assert recall("eval", FormValues) == FormValues()


def test_long_paths_show_their_tail() -> None:
    assert tail("/home/me/work/models/smollm2", 16) == "…/models/smollm2"
    assert tail("tiny", 18) == "tiny"


async def test_f_on_compare_saves_the_figure_ccapp_plot_draws(tmp_path: Path) -> None:
    from PIL import Image
    from test_comparison import REQUESTS, add_eval_run

    from ccapp.config import paths

    db = tmp_path / "s.db"
    with Store.open(db) as store:
        first = add_eval_run(store, REQUESTS, {i: i % 4 for i in range(len(REQUESTS))})
        second = add_eval_run(store, REQUESTS, {i: i % 7 for i in range(len(REQUESTS))})
    out = paths().reports_dir / f"corr-{first}-{second}.png"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(CompareScreen(first, second, db))
        await pilot.pause(0.3)
        await pilot.press("f")
        await wait_for(pilot, out.exists, timeout=120)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] >= 600


async def test_the_log_ends_with_how_the_job_ended(tmp_path: Path) -> None:
    """Not "cancelling…" once the run is paused, nor the start line once it is done."""
    db = tmp_path / "s.db"

    def log_lines(screen: LiveRunScreen) -> list[str]:
        log = screen.query_one("#live-log", RichLog)
        return ["".join(seg.text for seg in strip).rstrip() for strip in log.lines]

    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        paused = live(db, [started(1)], hold=True)
        app.push_screen(paused)
        await wait_for(pilot, lambda: paused.state.status == "running")
        assert log_lines(paused)[-1] == "run 1 started: 4 continuations"
        paused.stop_job()
        await wait_for(pilot, lambda: paused.finished)
        await pilot.pause()
        assert log_lines(paused)[-1].startswith("run 1 paused at 0 of 4: resume it from History")
        assert "ccapp eval --resume 1" in log_lines(paused)[-1]
        app.pop_screen()
        finished = {"event": "run_finished", "run_id": 2, "status": "done", "metrics": {}}
        done = live(db, [started(2, todo=0), finished])
        app.push_screen(done)
        await wait_for(pilot, lambda: done.finished)
        await pilot.pause()
        assert log_lines(done)[-2] == "run 2 started: 4 continuations (4 stored before this start)"
        assert log_lines(done)[-1] == "run 2 done: 4 of 4 continuations"


async def test_the_folder_picker_opens_where_ccapp_trains_models_and_goes_up(
    tmp_path: Path, ccapp_home: Path
) -> None:
    from textual.widgets import DirectoryTree

    from ccapp.config import paths
    from ccapp.screens.eval_form import FolderPicker

    trained = paths().data_dir / "models" / "train-3"
    trained.mkdir(parents=True)
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalFormScreen))
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, FolderPicker))
        tree = app.screen.query_one(DirectoryTree)
        assert Path(tree.path) == trained.parent
        await pilot.press("backspace")
        await wait_for(pilot, lambda: Path(tree.path) == trained.parent.parent)
