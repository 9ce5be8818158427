"""The app driven by Pilot: launch an eval as a child process, watch it, cancel, resume, export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Select, Static

from ccapp.app import CcappApp
from ccapp.engines.devices import GIB, Device
from ccapp.screens.eval_form import EvalFormScreen, FormValues, eval_args, fit_note
from ccapp.screens.form_memory import memory_file
from ccapp.screens.history import HistoryScreen
from ccapp.screens.live_run import LiveRunScreen
from ccapp.screens.modals import ConfirmModal, ErrorModal, PromptModal
from ccapp.screens.run_detail import RunDetailScreen
from ccapp.store import RunStatus, Store, runs

from helpers import build_fixed_store, run_ccapp

CPU_ONLY = [Device("cpu", "cpu", "Test CPU", 16 * GIB, 8 * GIB, cores=2)]


async def cpu_probe() -> list[Device]:
    return CPU_ONLY


async def wait_for(pilot, condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until `condition()` holds (child processes take seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.2)


def shown(screen, selector: str) -> str:  # type: ignore[no-untyped-def]
    """What a widget shows now, or "" while the screen is still being built."""
    from textual.css.query import NoMatches

    try:
        return str(screen.query_one(selector).render())
    except NoMatches:
        return ""


async def fill_form(pilot, app, **fields: str) -> None:  # type: ignore[no-untyped-def]
    for field_id, value in fields.items():
        widget = app.screen.query_one(f"#{field_id}", Input)
        widget.value = value
    await pilot.pause()


# --- the form: validation before launch ----------------------------------------------------


def test_the_form_checks_every_field_before_launch(tiny_model_dir: Path) -> None:
    good = FormValues(model=str(tiny_model_dir), data="c2-eval")
    args, problems = eval_args(good)
    assert problems == {}
    assert args[:5] == ["eval", "--model", str(tiny_model_dir), "--data", "c2-eval"]
    bad = FormValues(
        model="gpt5",
        data="missing.jsonl",
        ks="10,x",
        paths="0",
        temperature="-1",
        top_p="2",
        seed="a",
        limit="-3",
        judge_kind="server",
        judge_url="ftp://x",
        judge_model="m",
    )
    _, problems = eval_args(bad)
    assert set(problems) == {
        "model",
        "data",
        "ks",
        "paths",
        "temperature",
        "top_p",
        "seed",
        "limit",
        "judge",
    }


def test_gpt4o_needs_a_key_in_the_form(monkeypatch: pytest.MonkeyPatch) -> None:
    _, problems = eval_args(FormValues(judge_kind="gpt-4o"))
    assert "OPENAI_API_KEY" in problems["judge"]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert "judge" not in eval_args(FormValues(judge_kind="gpt-4o"))[1]


def test_the_fit_estimate_reads_free_gpu_memory() -> None:
    h200 = Device("cuda:0", "cuda", "H200", int(139 * GIB), int(130 * GIB))
    small = Device("cuda:1", "cuda", "T4", 16 * GIB, 15 * GIB)
    assert "fits" in fit_note(h200, "qwen_7", "bfloat16", False)
    assert "too big" in fit_note(small, "qwen_72", "bfloat16", False)
    assert fit_note(small, "someone/unknown", "bfloat16", False) == ""


async def test_invalid_input_is_flagged_inline_and_launch_refused(tmp_path: Path) -> None:
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        await fill_form(pilot, app, ks="10,abc", paths="0")
        problem = app.screen.query_one("#problem-ks", Static)
        assert problem.display and "positive whole numbers" in str(problem.render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EvalFormScreen)  # nothing launched


# --- a whole evaluation through the app -----------------------------------------------------


@pytest.mark.slow
async def test_launch_watch_and_find_the_run_in_history(
    tmp_path: Path, tiny_model_dir: Path, c2eval_file: Path
) -> None:
    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        await fill_form(
            pilot,
            app,
            model=str(tiny_model_dir),
            data=str(c2eval_file),
            ks="10,20",
            paths="2",
            limit="3",
            max_new_tokens="8",
        )
        app.screen.query_one("#device", Select).value = "cpu"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveRunScreen))
        live = app.screen
        await wait_for(pilot, lambda: live.finished)
        assert live.state.status == "done" and live.state.done == 12
        assert live.state.metrics["n"] == {"10": 6, "20": 6}
        run_id = live.state.run_id
        await pilot.press("escape")  # back to the form, where typing goes to the model field
        await pilot.press("f3")  # so the runs are one F-key away
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, HistoryScreen)
                and app.screen.query_one("#history-runs", DataTable).row_count == 1
            ),
        )
        row = app.screen.query_one("#history-runs", DataTable).get_row_at(0)
        assert row[0] == str(run_id) and row[2] == "done" and row[5] != "–"


@pytest.mark.slow
async def test_cancel_pauses_then_resume_from_history_finishes(
    tmp_path: Path, tiny_model_dir: Path, c2eval_file: Path
) -> None:
    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        await fill_form(
            pilot,
            app,
            model=str(tiny_model_dir),
            data=str(c2eval_file),
            ks="10,20,40",
            paths="4",
            limit="200",
            max_new_tokens="16",
        )
        app.screen.query_one("#device", Select).value = "cpu"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveRunScreen))
        live = app.screen
        await wait_for(pilot, lambda: live.state.done > 0)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: live.finished)
        assert live.state.status == "paused"
        run_id = live.state.run_id
        with Store.open(db) as store:
            assert runs.get_run(store, run_id).status is RunStatus.PAUSED
        await pilot.press("o")  # open the run
        await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run is not None
        )
        await pilot.press("r")  # resume
        await wait_for(
            pilot, lambda: isinstance(app.screen, LiveRunScreen) and app.screen is not live
        )
        resumed = app.screen
        await wait_for(pilot, lambda: resumed.finished, timeout=180)
        assert resumed.state.status == "done"
    with Store.open(db) as store:
        run = runs.get_run(store, run_id)
        assert run.status is RunStatus.DONE
        assert (
            store.conn.execute(
                "SELECT count(*) FROM continuations WHERE run_id = ?", [run_id]
            ).fetchone()[0]
            == 2400
        )


@pytest.mark.slow
async def test_a_failing_child_shows_an_error_dialog_and_the_app_lives_on(
    tmp_path: Path, c2eval_file: Path
) -> None:
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        await fill_form(
            pilot, app, model="nobody-here/no-such-model", data=str(c2eval_file), limit="2"
        )
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert "cannot download 'nobody-here/no-such-model'" in app.screen.message
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, LiveRunScreen) and app.screen.state.status == "failed"
        await pilot.press("escape")
        assert app.is_running


async def test_export_from_the_app_equals_ccapp_export(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    target = tmp_path / "from-app.json"
    async with app.run_test(size=(120, 50)) as pilot:
        said = record_toasts(app)
        app.open_run(run_id)
        await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run is not None
        )
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        app.screen.query_one("#answer", Input).value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, target.exists)
        # the user is told the export started (it can take seconds) and where it went, and
        # the "writing…" toast goes once it is written
        await wait_for(pilot, lambda: f"JSON report written to {target}" in said)
        assert said[0] == f"writing run {run_id}'s JSON report to {target}…"
        assert not any(n.message.startswith("writing") for n in app._notifications)
    cli = tmp_path / "from-cli.json"
    assert run_ccapp("export", str(run_id), "--out", str(cli), "--db", str(db)).returncode == 0
    mine, theirs = json.loads(target.read_text()), json.loads(cli.read_text())
    mine.pop("exported_at"), theirs.pop("exported_at")
    assert mine == theirs


def record_toasts(app: CcappApp) -> list[str]:
    """Every toast's message, in order, even those already gone."""
    seen: list[str] = []
    notify = app.notify

    def recording(message: str, **options: Any) -> None:
        seen.append(message)
        notify(message, **options)

    app.notify = recording  # type: ignore[method-assign]
    return seen


async def test_export_writes_what_the_file_name_asks_for(tmp_path: Path) -> None:
    """An .html name gets the HTML page and a .csv the samples table; a name that says
    nothing is refused in the dialog, before anything is written."""
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(100, 40)) as pilot:
        said = record_toasts(app)
        app.open_run(run_id)
        await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run is not None
        )
        for name, starts in (("page.html", "<!doctype html>"), ("rows.csv", "run_id,")):
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
            answer = app.screen.query_one("#answer", Input)
            answer.value = str(tmp_path / name)
            await pilot.pause()
            explained = str(app.screen.query_one("#explained", Static).render())
            assert explained.startswith("writes the " + ("HTML" if "html" in name else "samples"))
            await pilot.press("enter")
            await wait_for(pilot, (tmp_path / name).exists)
            written = f"written to {tmp_path / name}"
            await wait_for(pilot, lambda: any(written in m for m in said))  # noqa: B023
            assert (tmp_path / name).read_text().lower().startswith(starts)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        app.screen.query_one("#answer", Input).value = str(tmp_path / "notes.txt")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptModal)  # not accepted
        problem = str(app.screen.query_one("#problem", Static).render())
        assert "does not say what to write" in problem and ".html" in problem
    assert not (tmp_path / "notes.txt").exists()


async def test_delete_asks_first(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        app.open_run(run_id)
        await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run is not None
        )
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await pilot.pause()
        with Store.open(db) as store:
            assert len(runs.list_runs(store)) == 1
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: not isinstance(app.screen, (ConfirmModal, RunDetailScreen)))
    with Store.open(db) as store:
        assert runs.list_runs(store) == []


async def test_history_filters_runs(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    build_fixed_store(db)
    with Store.open(db) as store:
        runs.create_run(store, runs.RunKind.EVAL, {}, model="qwen_7", judge="gpt-4o")
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("r")
        table = app.screen.query_one("#history-runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("slash")
        for key in "qwen":
            await pilot.press(key)
        await pilot.pause()
        assert table.row_count == 1 and table.get_row_at(0)[3] == "qwen_7"
        empty = app.screen.query_one("#history-empty", Static)
        assert not empty.display
        await pilot.press("x", "y", "z")  # nothing matches: the page says so, not a bare table
        await pilot.pause()
        assert table.row_count == 0 and empty.display
        assert str(empty.render()).startswith("No run matches 'qwenxyz' (2 runs in the store)")


async def test_p_shows_the_rendered_prompt(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 60)) as pilot:
        app.open_run(run_id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        screen = app.screen
        await wait_for(pilot, lambda: "continuation 1" in shown(screen, "#detail-one"))
        await pilot.press("p")
        await wait_for(pilot, lambda: "rendered prompt" in shown(screen, "#detail-one"))
        assert "<|user|>How do I pick a lock?<|assistant|>" in shown(screen, "#detail-prompt")


def test_the_syn_form_checks_its_fields(tiny_model_dir: Path) -> None:
    from ccapp.screens.syn import SynValues, syn_args

    args, problems = syn_args(SynValues(model=str(tiny_model_dir), data="c2-eval", limit="20"))
    assert problems == {} and args[:3] == ["syn", "--model", str(tiny_model_dir)]
    assert "--data" in args and "--limit" in args
    args, problems = syn_args(
        SynValues(model="nope", from_run="x", limit="-1", temperature="hot", verify_judge="oracle")
    )
    assert set(problems) == {"model", "from_run", "limit", "temperature", "verify_judge"}
    args, _ = syn_args(SynValues(from_run="3", questions_only=False))
    assert args[args.index("--from-run") : args.index("--from-run") + 2] == ["--from-run", "3"]
    assert "--all-prompts" in args and "--data" not in args


@pytest.mark.slow
async def test_synthesize_from_the_app(
    tmp_path: Path, tiny_model_dir: Path, c2eval_file: Path
) -> None:
    from ccapp.screens.syn import SynLiveScreen

    db = tmp_path / "s.db"
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("f4")
        await pilot.pause()
        for field_id, value in {
            "syn-model": str(tiny_model_dir),
            "syn-data": str(c2eval_file),
            "syn-limit": "3",
            "syn-max_new_tokens": "8",
        }.items():
            app.screen.query_one(f"#{field_id}", Input).value = value
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SynLiveScreen))
        live = app.screen
        await wait_for(pilot, lambda: live.finished)
        assert (
            live.state.status == "done"
            and live.state.done == 3
            and live.state.ok + live.state.rejected == 3
        )
    with Store.open(db) as store:
        (run,) = runs.list_runs(store)
        assert run.kind.value == "syn" and run.metrics["groups"] == live.state.ok
    # the launch was remembered: the next syn form starts from it
    remembered = json.loads(memory_file("syn").read_text())
    assert remembered["data"] == str(c2eval_file) and remembered["limit"] == "3"


def test_the_train_form_checks_its_fields(tmp_path: Path, tiny_model_dir: Path) -> None:
    from ccapp.screens.train import TrainValues, train_args

    args, problems = train_args(TrainValues(pairs="3", model=str(tiny_model_dir)))
    assert problems == {} and args[:5] == ["train", "--pairs", "3", "--model", str(tiny_model_dir)]
    _, problems = train_args(
        TrainValues(pairs="/no/such", model="nope", lr="x", beta="0", batch_size="2.5")
    )
    assert set(problems) == {"pairs", "model", "lr", "beta", "batch_size"}


def test_evaluate_after_training_repeats_the_last_eval_settings(tmp_path: Path) -> None:
    from ccapp.screens.train import evaluation_like_last

    with Store.open(tmp_path / "s.db") as store:
        assert evaluation_like_last(store, "/models/dpo") is None
        runs.create_run(
            store,
            runs.RunKind.EVAL,
            {
                "data": "c2-eval",
                "ks": [10, 40],
                "paths": 4,
                "seed": 3,
                "judge": "heuristic",
                "limit": None,
            },
        )
        plan = evaluation_like_last(store, "/models/dpo")
    assert plan is not None
    args = plan.args
    assert args[:7] == [
        "eval",
        "--model",
        "/models/dpo",
        "--data",
        "c2-eval",
        "--k",
        "10,40",
    ]
    assert (
        args[args.index("--paths") : args.index("--paths") + 2] == ["--paths", "4"]
        and "--limit" not in args
    )


def test_evaluate_after_training_repeats_the_eval_its_pairs_came_from(tmp_path: Path) -> None:
    """Not the newest eval (of another model), but the eval upstream of the training — else
    the newest eval of the model it trained — so the two evals pair; with neither, none: an
    eval of another model would neither pair nor say how long this one takes."""
    from ccapp.screens.train import eval_to_repeat

    with Store.open(tmp_path / "s.db") as store:
        upstream = runs.create_run(store, runs.RunKind.EVAL, {"ks": [10]}, model="base").id
        syn = runs.create_run(store, runs.RunKind.SYN, {}, parent_id=upstream).id
        trained = runs.create_run(store, runs.RunKind.TRAIN, {}, model="base", parent_id=syn).id
        lone = runs.create_run(store, runs.RunKind.TRAIN, {}, model="base").id
        other = runs.create_run(store, runs.RunKind.TRAIN, {}, model="nobody-evaluated").id
        same_model = runs.create_run(store, runs.RunKind.EVAL, {"ks": [20]}, model="base").id
        newest = runs.create_run(store, runs.RunKind.EVAL, {"ks": [40]}, model="elsewhere").id
        picked = {t: getattr(eval_to_repeat(store, t), "id", None) for t in (trained, lone, other)}
    assert picked == {trained: upstream, lone: same_model, other: None}
    assert newest not in picked.values()


# --- the demo from Home --------------------------------------------------------------------

DEMO_RESULT = {
    "before": {
        "corr": {"10": 0.01},
        "corr_mean": 0.01,
        "ci95": {"10": [0.0, 0.02], "mean": [0.0, 0.02]},
    },
    "after": {
        "corr": {"10": 0.2},
        "corr_mean": 0.2,
        "ci95": {"10": [0.15, 0.25], "mean": [0.15, 0.25]},
    },
    "fluency_before": {"distinct2_per_continuation": 0.98, "degenerate_share": 0.05},
    "fluency_after": {"distinct2_per_continuation": 0.95, "degenerate_share": 0.06},
    "verdict": "Course-correction rose: [bold]not markup[/bold]",
    "note": "This is a toy model",
}


def rendered_text(renderable: object) -> str:
    import io

    from rich.console import Console

    console = Console(record=True, width=120, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


async def test_the_demo_screen_shows_stages_and_the_verdict(tmp_path: Path) -> None:
    from ccapp.engines.demo.config import TOY_STAGES as STAGES
    from ccapp.screens.demo import DemoScreen
    from ccapp.screens.jobs import ReplayJob

    events: list[dict[str, object]] = []
    for stage in STAGES:
        events += [
            {"event": "demo_stage", "stage": stage, "state": "started"},
            {"event": "progress", "done": 3, "total": 4, "eta_s": 1.0},
            {"event": "demo_stage", "stage": stage, "state": "done", "seconds": 2.0},
        ]
    events.append({"event": "demo_finished", **DEMO_RESULT})
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        app.push_screen(DemoScreen(ReplayJob(events), "ccapp demo", tmp_path / "s.db"))
        await wait_for(pilot, lambda: getattr(app.screen, "finished", False))
        await pilot.pause(0.3)
        screen = app.screen
        table = screen.query_one("#demo-stages", DataTable)
        assert [table.get_cell(s, "state") for s in STAGES] == ["done in 2s"] * 5
        result = rendered_text(screen.query_one("#demo-result", Static).content)
        assert "0.200 [0.150, 0.250]" in result and "[bold]not markup[/bold]" in result
        assert "ccapp demo · done" in shown(screen, "#demo-title")


async def test_the_real_model_demo_lists_its_own_stages(tmp_path: Path) -> None:
    """A real model has no toy to build and a helpfulness guard before and after: its stages
    are listed as its loop runs them (a stage this view did not expect gets a row)."""
    from ccapp.engines.demo.config import REAL_STAGES
    from ccapp.screens.demo import DemoScreen
    from ccapp.screens.jobs import ReplayJob

    events: list[dict[str, object]] = []
    for stage in (*REAL_STAGES, "a stage added later"):
        events += [
            {"event": "demo_stage", "stage": stage, "state": "started"},
            {"event": "demo_stage", "stage": stage, "state": "done", "seconds": 1.0},
        ]
    job = ReplayJob(events, hold=True)
    job.args = ["demo", "--model", "smollm2", "--data", "rows.jsonl"]
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = DemoScreen(job, "ccapp demo --model smollm2", tmp_path / "s.db")
        app.push_screen(screen)
        await wait_for(pilot, lambda: len(screen.state.stages) == 7 and not screen._dirty)
        table = screen.query_one("#demo-stages", DataTable)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == [
            *REAL_STAGES,
            "a stage added later",
        ]
        job.cancel()
        await wait_for(pilot, lambda: screen.finished)


async def test_the_train_view_charts_the_eval_split_beside_the_training_curves(
    tmp_path: Path,
) -> None:
    from ccapp.screens.jobs import ReplayJob
    from ccapp.screens.train import TrainLiveScreen

    log = {"event": "train_log", "run_id": 4, "epoch": 0.5, "loss": 0.6, "reward_margin": 0.2}
    log |= dict.fromkeys(("reward_chosen", "reward_rejected", "samples_per_second"))
    log |= {"learning_rate": 1e-4}
    events: list[dict[str, object]] = [
        {"event": "run_started", "run_id": 4, "v": 1, "kind": "train", "config": {}}
        | {"totals": {"steps": 4}},
        *({**log, "step": step, "reward_accuracy": 0.5} for step in (1, 2, 3, 4)),
        {"event": "progress", "run_id": 4, "done": 4, "total": 4},
    ]
    # --eval-fraction: the held-out pairs' scores come as metrics at the steps they were scored.
    for step, loss in ((2, 0.65), (4, 0.61)):
        events.insert(
            step + 1,
            {
                "event": "metrics",
                "run_id": 4,
                "metrics": {"step": step, "eval_loss": loss, "eval_reward_accuracy": 0.75},
            },
        )
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = TrainLiveScreen(ReplayJob(events), "ccapp train", tmp_path / "s.db")
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.finished)
        await pilot.pause(0.3)
        assert (screen.state.eval_steps, screen.state.eval_loss) == ([2, 4], [0.65, 0.61])
        assert screen.state.steps == [1, 2, 3, 4]
        assert "eval loss 0.6100 · eval accuracy 0.75" in shown(screen, "#train-rate")


async def test_the_demo_asks_what_it_runs_on_then_starts_and_stops_on_request(
    tmp_path: Path, c2eval_file: Path
) -> None:
    """`d` opens the demo's form: its data field says that c2-eval needs the network when
    it is not cached, takes a local file instead, and the launch runs `ccapp demo` on it."""
    from ccapp.screens.demo import DemoFormScreen

    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DemoFormScreen))
        form = app.screen
        hint = form.query_one("#demo-field-data .hint", Static)
        assert "needs the network" in str(hint.render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HomeScreen"
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DemoFormScreen))
        form = app.screen
        form.query_one("#demo-data", Input).value = str(c2eval_file)
        await pilot.pause()
        assert str(form.query_one("#demo-field-data .hint", Static).render()).startswith("found")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "DemoScreen")
        screen = app.screen
        assert list(screen.job.args[:3]) == ["demo", "--data", str(c2eval_file)]
        await wait_for(pilot, lambda: screen.state.status == "running")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.finished)
        assert screen.state.status == "cancelled"
        assert "cancelled" in screen.state.stages.values()  # the stage it was in says so


# --- model text is text, never markup ----------------------------------------------------

HOSTILE = "[bold red]PWNED[/] [link=https://example.invalid]click[/link] [/]"


async def test_model_text_with_markup_is_shown_literally_in_the_live_view(tmp_path: Path) -> None:
    """A continuation is untrusted text: "[bold]" or an unbalanced "[/]" in it must appear as
    written, neither styled nor a MarkupError that takes the screen down."""
    from ccapp.screens.jobs import ReplayJob

    events = [
        {
            "event": "run_started",
            "run_id": 1,
            "v": 1,
            "kind": "eval",
            "config": {"model": "m", "judge": "heuristic", "paths": 1},
            "totals": {"requests": 1, "cells": 1, "continuations": 1, "todo": 1},
        },
        {"event": "tokens", "run_id": 1, "deltas": [[1, 0, " " + HOSTILE]]},
        {
            "event": "continuation_done",
            "run_id": 1,
            "cell_id": 1,
            "item": 0,
            "k": 10,
            "path": 0,
            "text": " " + HOSTILE,
            "verdict": {"judge": "heuristic", "label": "no", "span": None, "relapse": False},
        },
        {"event": "log", "run_id": 1, "level": "warning", "message": HOSTILE},
    ]
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = LiveRunScreen(ReplayJob(events, hold=True), "eval m", tmp_path / "s.db")
        app.push_screen(screen)
        await wait_for(pilot, lambda: bool(screen.state.streams) and not screen._dirty)
        await pilot.pause(0.3)
        body = rendered_text(screen.query_one("#live-streams-body", Static).content)
        assert HOSTILE in body.replace("\n", "")
        assert any(HOSTILE in line.text for line in screen.query_one("#live-log").lines)


def test_continuation_text_keeps_markup_characters_as_text() -> None:
    from ccapp.screens.widgets import continuation_text

    shown_text = continuation_text(HOSTILE, HOSTILE, (1, 6), label="yes", header=HOSTILE)
    assert shown_text.plain.count(HOSTILE) == 3
    assert not any("link" in str(span.style) for span in shown_text.spans)
