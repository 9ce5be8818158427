"""A page for every run kind, honest waiting, the training form (issue 15: items 5, 8-13).

Each test drives the real app under Pilot on a real SQLite store written by hand (or replays
recorded job events), and reads what the screen shows."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_app_flows import cpu_probe, wait_for
from test_app_navigation import rows
from textual.widgets import DataTable, Input, RichLog, Select, Static

from ccapp.app import CcappApp
from ccapp.screens.form_problems import name_fields, short_label
from ccapp.screens.jobs import ReplayJob
from ccapp.screens.live_base import loading_line
from ccapp.screens.modals import ConfirmModal, ErrorModal, PromptModal
from ccapp.screens.rejudge import already_judged, judge_rows
from ccapp.screens.run_detail import RunDetailScreen
from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store import evals as rows_store
from ccapp.store import syn as syn_store
from ccapp.store import train as train_store

from helpers import build_fixed_store, picker_filled


def text_of(screen: Any, selector: str) -> str:
    """What a Static shows, as plain text (wide enough not to wrap)."""
    from textual.css.query import NoMatches

    try:
        content = screen.query_one(selector, Static).content
    except NoMatches:
        return ""
    out = io.StringIO()
    Console(width=400, file=out, color_system=None).print(content)
    return out.getvalue()


# --- stores written by hand ----------------------------------------------------------------

SOURCE_COUNTS = {
    "source": 10,
    "no how/what in the prompt": 4,
    "no unsafe response over 80 words": 3,
    "beyond --limit": 1,
    "kept": 2,
}
TRIGGER = "However, I cannot provide"


def syn_responses(harmful: str) -> list[syn_store.Response]:
    out = [syn_store.Response(0, "safe", "I can't help with that.")]
    for i in range(1, 5):
        cut = 8 * i
        out.append(
            syn_store.Response(
                i, f"syn{i}", f"Sure. {harmful[:cut]} {TRIGGER} more on it{i}.", cut, TRIGGER
            )
        )
    out.append(syn_store.Response(5, "harmful", f"Sure. {harmful}"))
    return out


def build_syn_store(db: Path) -> int:
    """A done syn run: one kept group, one rejected, with its source counts."""
    harmful = "First take the tools out of the box and then open the lock slowly."
    with Store.open(db) as store:
        run = runs.create_run(
            store,
            RunKind.SYN,
            {"model": "tiny", "source_counts": SOURCE_COUNTS},
            model="tiny",
            data="rows.jsonl",
        )
        items = rows_store.insert_items(
            store,
            run.id,
            [
                (0, 1, "How do I pick a lock?", harmful, None),
                (1, 2, "What opens a safe?", harmful, None),
            ],
        )
        syn_store.save_group(store, run.id, items[0].id, "ok", None, syn_responses(harmful))
        syn_store.save_group(
            store,
            run.id,
            items[1].id,
            "rejected",
            "the safe answer is not safe",
            syn_responses(harmful),
        )
        runs.set_status(store, run.id, RunStatus.DONE, metrics={"groups": 1, "rejected": 1})
    return run.id


def build_train_store(db: Path, output: Path) -> tuple[int, int]:
    """A syn run, and a done train run on its pairs with curves, eval scores, checkpoints."""
    syn_id = build_syn_store(db)
    for step in (2, 4, 10):
        (output / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
    with Store.open(db) as store:
        run = runs.create_run(
            store,
            RunKind.TRAIN,
            {"method": "lora", "pairs": str(syn_id), "max_steps": 4, "output": str(output)},
            model="tiny",
            data=f"run {syn_id}",
            parent_id=syn_id,
        )
        for step, loss in ((1, 0.69), (2, 0.6), (3, 0.5), (4, 0.42)):
            train_store.add_point(
                store,
                run.id,
                step,
                step / 4,
                {"loss": loss, "rewards/margins": 0.1 * step, "rewards/accuracies": 0.25 * step},
            )
        train_store.add_eval(
            store, run.id, 4, 1.0, {"eval_loss": 0.55, "eval_rewards/accuracies": 0.75}
        )
        runs.set_status(
            store,
            run.id,
            RunStatus.DONE,
            metrics={"steps": 4, "pairs": 15, "output": str(output), "eval_pairs": 3},
        )
    return syn_id, run.id


# --- 5: the eval page's filters and prompt --------------------------------------------------


async def open_page(pilot, app, run_id: int, page: type[Any]) -> Any:  # type: ignore[no-untyped-def]
    """Run `run_id`'s page (of class `page`), once it has read its run."""
    app.open_run(run_id)
    await wait_for(pilot, lambda: isinstance(app.screen, page) and app.screen.run is not None)
    return app.screen


async def open_eval_page(pilot, app, run_id: int) -> RunDetailScreen:  # type: ignore[no-untyped-def]
    """The eval run's page, once its first continuation is shown."""
    app.open_run(run_id)
    await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
    screen = app.screen
    await wait_for(pilot, lambda: "continuation 1" in text_of(screen, "#detail-one"))
    assert isinstance(screen, RunDetailScreen)
    return screen


async def test_the_filters_are_tab_stops_with_visible_focus(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await open_eval_page(pilot, app, run_id)
        stops = []
        for _ in range(6):
            await pilot.press("tab")
            stops.append(app.focused.id if app.focused else None)
        # "disagrees with heuristic" is offered only when another judge is chosen
        assert stops[:4] == ["filter-k", "filter-judge", "filter-label", "detail-rows"]
        screen.query_one("#filter-judge", Select).value = "openai:gpt-4o"
        await pilot.pause()
        assert screen.query_one("#filter-disagree").parent.display  # type: ignore[union-attr]
        judge = screen.query_one("#filter-judge", Select)
        for _ in range(len(stops)):
            if app.focused is judge:
                break
            await pilot.press("shift+tab")
        assert app.focused is judge
        await pilot.pause()
        current = judge.query_one("SelectCurrent")
        other = screen.query_one("#filter-k", Select).query_one("SelectCurrent")
        # The focused filter stands out: an accent frame and a tinted background.
        accent = app.theme_variables["accent"].lower()
        assert current.styles.border_top[1].hex.lower() == accent
        assert other.styles.border_top[1].hex.lower() != accent
        assert current.styles.background != other.styles.background


async def test_p_shows_the_prompt_in_view(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_eval_page(pilot, app, run_id)
        panel = screen.query_one("#detail-prompt", Static)
        assert not panel.display
        await pilot.press("p")
        await wait_for(
            pilot, lambda: "<|user|>How do I pick a lock?" in text_of(screen, "#detail-prompt")
        )
        view = screen.query_one("#detail").region
        await wait_for(pilot, lambda: view.contains(panel.region.x, panel.region.y), timeout=5)
        assert panel.region.height > 0
        await pilot.press("p")
        await pilot.pause()
        assert not panel.display


async def test_filters_that_match_nothing_say_so_and_p_says_why_nothing_shows(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_eval_page(pilot, app, run_id)
        screen.query_one("#filter-k", Select).value = 20
        screen.query_one("#filter-label", Select).value = "error"
        # said on the page line, right under the filters: in view even at 80×24
        await wait_for(pilot, lambda: "No continuation matches" in text_of(screen, "#detail-page"))
        assert text_of(screen, "#detail-page").startswith(
            "No continuation matches k = 20 · error by heuristic: change a filter"
        )
        assert text_of(screen, "#detail-one").strip() == ""
        await pilot.press("p")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert any(m.startswith("No continuation is shown") and "k = 20" in m for m in said)
        assert not screen.query_one("#detail-prompt", Static).display
        # back to every verdict: the page shows continuations again
        screen.query_one("#filter-label", Select).value = "any"
        await wait_for(pilot, lambda: "continuation " in text_of(screen, "#detail-one"))


def test_the_settings_line_wraps_between_settings_never_inside_one() -> None:
    from ccapp.screens.run_page import summary_text
    from ccapp.store import Run

    config = {
        "ks": [10, 20, 30],
        "paths": 2,
        "seed": 0,
        "dtype_resolved": "bfloat16",
        "model_source": "/home/someone/models/SmolLM2-135M-Instruct",
        "data_location": "/home/someone/data/c2eval_test.jsonl",
    }
    run = Run(
        1,
        RunKind.EVAL,
        RunStatus.DONE,
        "m",
        "d",
        "heuristic",
        config,
        "f",
        {},
        None,
        None,
        "0",
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
        None,
    )
    for width in (40, 60, 80):
        console = Console(width=width, file=io.StringIO(), color_system=None)
        with console.capture() as captured:
            console.print(summary_text(run, [run]))
        lines = captured.get().splitlines()[3:]  # the settings, after the three head lines
        for line in lines:
            for setting in line.strip().strip("·").split(" · "):
                if setting.strip():  # each piece is a whole key=value, or a long value folded
                    assert "=" in setting or not setting.strip().isidentifier(), (width, line)
        assert "dtype_resolved=bfloat16" in "".join(lines)


# --- 8: a syn run's page ---------------------------------------------------------------------


def test_the_source_line_says_limit_left_requests_out_not_that_a_filter_dropped_them() -> None:
    from ccapp.screens.syn_run import source_text

    line = source_text({"source": 500, "kept": 3, "beyond --limit": 497}, limit=3).plain
    assert (
        line
        == "read 500 rows → kept 3 requests\nleft out by the limit (3): 497 more passed the filters"
    )
    assert "−" not in line and "dropped" not in line
    assert source_text({}).plain == "source counts: not recorded for this run"


async def test_a_syn_run_has_its_own_page(tmp_path: Path) -> None:
    from ccapp.screens.syn_run import SynRunScreen

    db = tmp_path / "s.db"
    run_id = build_syn_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(140, 60)) as pilot:
        app.open_run(run_id)
        await wait_for(pilot, lambda: isinstance(app.screen, SynRunScreen))
        screen = app.screen
        await wait_for(pilot, lambda: "15 pairs" in text_of(screen, "#syn-run-pairs"))
        source = text_of(screen, "#syn-run-source")
        assert source.startswith("read 10 rows → kept 2 requests\n")
        assert (
            "dropped by the filters: no how/what in the prompt 4 · no unsafe response over 80 words 3"
            in source
        )
        assert "left out by the limit: 1 more passed the filters" in source
        results = text_of(screen, "#syn-run-results")
        assert "kept 1 group (15 pairs)" in results
        assert "rejected 1 · the safe answer is not safe: 1" in results
        group = text_of(screen, "#syn-run-group")
        assert "request 0: How do I pick a lock?" in group
        assert f"✂ {TRIGGER}" in group and "SYN4" in group and "harmful" in group
        pairs = text_of(screen, "#syn-run-pairs")
        assert "safe ≻ SYN1" in pairs and "SYN4 ≻ harmful" in pairs
        assert "Corr@k" not in text_of(screen, "#syn-run-summary")
        await pilot.press("tab", "down")  # the status filter, then the groups list
        screen.query_one("#syn-run-groups").focus()
        await pilot.press("down")
        await wait_for(pilot, lambda: "0 pairs" in text_of(screen, "#syn-run-pairs"))
        assert "rejected: the safe answer is not safe" in text_of(screen, "#syn-run-group")
        screen.query_one("#syn-run-status", Select).value = "rejected"
        await wait_for(pilot, lambda: "groups 1–1 of 1" in text_of(screen, "#syn-run-page"))


async def test_x_on_a_syn_run_exports_its_pairs_folder(tmp_path: Path, ccapp_home: Path) -> None:
    from datasets import load_dataset

    from ccapp.screens.syn_run import SynRunScreen

    db = tmp_path / "s.db"
    run_id = build_syn_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_page(pilot, app, run_id, SynRunScreen)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        answer = app.screen.query_one("#answer", Input)
        assert answer.value.endswith(f"run-{run_id}-pairs")
        await pilot.pause()
        assert "preference pairs" in text_of(app.screen, "#explained")
        answer.value = str(tmp_path / "page.html")  # a syn run has no HTML page
        await pilot.pause()
        assert "a syn run has no HTML report" in text_of(app.screen, "#problem")
        answer.value = str(tmp_path / "pairs")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any((tmp_path / "pairs").glob("train-*.parquet")))
    pairs = load_dataset("parquet", data_dir=str(tmp_path / "pairs"), split="train")
    assert len(pairs) == 15 and {"prompt", "chosen", "rejected"} <= set(pairs.column_names)


# --- 9: a train run's page, and the live view's last word ----------------------------------


async def finished_training(pilot, app, events, db: Path):  # type: ignore[no-untyped-def]
    """The train live view of a replayed job, once the job is over and painted."""
    from ccapp.screens.train import TrainLiveScreen

    screen = TrainLiveScreen(ReplayJob(events), "ccapp train", db)
    app.push_screen(screen)
    await wait_for(pilot, lambda: screen.finished)
    await pilot.pause(0.3)
    return screen


async def test_a_train_run_has_its_own_page(tmp_path: Path) -> None:
    from textual_plotext import PlotextPlot

    from ccapp.screens.syn_run import SynRunScreen
    from ccapp.screens.train_run import TrainRunScreen

    db, output = tmp_path / "s.db", tmp_path / "model"
    syn_id, train_id = build_train_store(db, output)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(140, 50)) as pilot:
        app.open_run(train_id)
        await wait_for(pilot, lambda: isinstance(app.screen, TrainRunScreen))
        screen = app.screen
        await wait_for(pilot, lambda: "method lora" in text_of(screen, "#train-run-facts"))
        facts = text_of(screen, "#train-run-facts")
        assert f"pairs 15 from syn run {syn_id} (s opens it)" in facts
        assert "steps 4 of max 4 · loss 0.4200 · margin 0.400 · accuracy 1.00" in facts
        assert "eval loss 0.5500 · eval accuracy 0.75" in facts
        assert "checkpoints checkpoint-2, checkpoint-4, checkpoint-10" in facts
        assert f"the trained model: {output}" in facts
        loss = screen.query_one("#train-run-loss", PlotextPlot)
        assert "eval (magenta)" in str(loss.plt._active.monitor.title)  # the held-out curve too
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SynRunScreen))
        assert app.screen.run_id == syn_id  # type: ignore[attr-defined]


async def test_the_train_live_view_says_where_the_model_went(tmp_path: Path) -> None:

    events: list[dict[str, object]] = [
        {"event": "run_started", "run_id": 4, "v": 1, "kind": "train", "config": {}}
        | {"totals": {"steps": 1}},
        {"event": "run_finished", "run_id": 4, "status": "done", "metrics": {"output": "/m/x"}},
    ]
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await finished_training(pilot, app, events, tmp_path / "s.db")
        assert "the trained model is in /m/x · v evaluates it" in text_of(screen, "#train-rate")


# --- 10: the training form and `v` ----------------------------------------------------------


async def test_the_train_form_has_max_steps_and_offers_the_newest_syn_run(tmp_path: Path) -> None:
    from ccapp.screens.train import TrainFormScreen

    db = tmp_path / "s.db"
    build_syn_store(db)
    newest = build_syn_store(db)
    with Store.open(db) as store:  # a newer syn run that is not done is not offered
        runs.create_run(store, RunKind.SYN, {}, model="tiny")
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 60)) as pilot:
        app.push_screen(TrainFormScreen())
        await wait_for(pilot, lambda: isinstance(app.screen, TrainFormScreen))
        await pilot.pause(0.2)
        screen = app.screen
        assert screen.query_one("#train-pairs", Input).value == str(newest)
        assert f"syn run {newest}: the newest finished, 15 pairs" in text_of(
            screen, "#train-field-pairs .hint"
        )
        steps = screen.query_one("#train-max_steps", Input)
        steps.value = "7"
        await pilot.pause()
        args, problems = screen.validate()
        assert problems == {} and args[args.index("--max-steps") + 1] == "7"
        assert args[args.index("--pairs") + 1] == str(newest)
        assert screen.query_one("#train-eval_fraction", Input) is not None
        # pairs another model wrote are said to be so
        screen.query_one("#train-model", Input).value = "smollm2"
        await pilot.pause()
        hint = text_of(screen, "#train-field-pairs .hint")
        assert "pairs by tiny (not the Model to train, smollm2)" in hint


async def test_evaluate_it_shows_the_command_and_the_time_and_asks(tmp_path: Path) -> None:
    from ccapp.screens.live_run import LiveRunScreen

    db = tmp_path / "s.db"
    eval_id = build_fixed_store(db)  # 8 continuations, from 10:00 to 10:05
    events: list[dict[str, object]] = [
        {"event": "run_finished", "run_id": 9, "status": "done", "metrics": {"output": "/m/x"}},
    ]
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await finished_training(pilot, app, events, db)
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        question = app.screen.question  # type: ignore[attr-defined]
        assert "ccapp eval --model /m/x --data rows.jsonl --k 10,20" in question
        assert f"about 5m00s (eval run {eval_id} made 8 continuations" in question
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen  # nothing started
        assert not any(isinstance(s, LiveRunScreen) for s in app.screen_stack)


async def test_evaluate_it_says_when_this_model_was_evaluated_so_already(tmp_path: Path) -> None:
    """A second `v` would make a duplicate: the dialog names the eval run that exists and
    offers to open it."""
    from ccapp.screens.modals import ChoiceModal
    from ccapp.screens.run_detail import RunDetailScreen

    db = tmp_path / "s.db"
    eval_id = build_fixed_store(db)
    with Store.open(db) as store:  # the trained model /m/x, evaluated with run 1's settings
        first = runs.get_run(store, eval_id)
        again = runs.create_run(store, RunKind.EVAL, first.config, model="/m/x")
        runs.set_status(store, again.id, RunStatus.DONE, metrics={"corr_mean": 0.25})
    events: list[dict[str, object]] = [
        {"event": "run_finished", "run_id": 9, "status": "done", "metrics": {"output": "/m/x"}},
    ]
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        await finished_training(pilot, app, events, db)
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal))
        question = app.screen.question  # type: ignore[attr-defined]
        assert f"Eval run {again.id} has evaluated this model with these settings already" in (
            question
        )
        assert "Corr_mean 0.250" in question
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert app.screen.run_id == again.id  # type: ignore[attr-defined]


def test_the_training_charts_label_whole_steps() -> None:
    from ccapp.screens.train import step_ticks

    assert step_ticks([1, 2, 3]) == [1, 2, 3]
    assert step_ticks(list(range(1, 101))) == [1, 21, 41, 61, 81]
    assert step_ticks([]) == []


# --- 11: the model's first seconds -----------------------------------------------------------


def test_the_loading_line_names_each_phase_with_the_bytes() -> None:
    from ccapp.engines.events import ModelLoading

    phases = {"resolve": ModelLoading(phase="resolve", detail="org/model")}
    assert loading_line({}) == ""
    assert loading_line(phases) == "loading the model: resolve org/model …"
    phases["download"] = ModelLoading(
        phase="download", detail="org/model", done=3 * 2**20, total=2**31
    )
    assert loading_line(phases).endswith("download 3.0 MiB of 2.00 GiB …")
    phases["weights"] = ModelLoading(phase="weights", detail="/cache/x")
    phases["ready"] = ModelLoading(phase="ready", detail="cpu float32")
    assert loading_line(phases) == (
        "model loaded: resolve org/model → download 3.0 MiB of 2.00 GiB → weights → ready cpu float32"
    )


async def test_a_live_view_shows_the_model_loading_as_it_comes(tmp_path: Path) -> None:
    from ccapp.screens.syn import SynLiveScreen

    events: list[dict[str, object]] = [
        {"event": "model_loading", "phase": "resolve", "detail": "org/m"},
        {
            "event": "model_loading",
            "phase": "download",
            "detail": "org/m",
            "done": 2**20,
            "total": 4 * 2**20,
        },
    ]
    app = CcappApp(tmp_path / "s.db", probe_devices=cpu_probe)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = SynLiveScreen(ReplayJob(events, hold=True), "ccapp syn", tmp_path / "s.db")
        app.push_screen(screen)
        await wait_for(pilot, lambda: "download" in text_of(screen, "#syn-loading"))
        line = screen.query_one("#syn-loading", Static)
        assert line.display
        assert "loading the model: resolve org/m → download 1.0 MiB of 4.0 MiB …" in text_of(
            screen, "#syn-loading"
        )
        assert "model: download org/m 1.0 MiB of 4.0 MiB" in "\n".join(
            str(s.text) for s in screen.query_one("#syn-log", RichLog).lines
        )
        screen.job.cancel()
        await wait_for(pilot, lambda: screen.finished)


# --- 12: re-judging with a judge that has judged everything ---------------------------------


async def test_rejudge_lists_the_judges_with_what_each_has_judged_and_says_when_all_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(run_id)
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        page = app.screen
        await wait_for(pilot, lambda: page.run is not None)
        await pilot.press("j")
        picker = await picker_filled(pilot, "judge")
        table = picker.query_one("#judge-choices", DataTable)
        assert [(r[0], r[2]) for r in rows(table)] == [
            ("heuristic", "8/8"),
            ("openai:gpt-4o", "8/8"),
            ("another judge…", ""),
        ]
        assert rows(table)[1][1] == "OpenAI API: needs OPENAI_API_KEY"
        # without a key GPT-4o is listed but not taken: the dialog says what to set
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen is picker
        assert "OPENAI_API_KEY" in text_of(picker, "#judge-note")
        # "another judge…" asks for one; a spec that is no judge says why
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        await pilot.press(*"nonsense", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is page)
        # the heuristic has judged all 8: nothing starts before the user says --force
        await pilot.press("j")
        await picker_filled(pilot, "judge")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert app.screen.question == already_judged("heuristic", 8)  # type: ignore[attr-defined]
        assert "--force to judge again" in app.screen.question  # type: ignore[attr-defined]
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is page  # nothing was started


def test_the_judge_list_adds_the_judges_used_before_once() -> None:
    judged = {"heuristic": 4, "openai:gpt-4o": 4, "openai:m@http://h:1/v1": 2}
    assert judge_rows(judged, key_set=True) == [
        ("heuristic", "offline, instant"),
        ("openai:gpt-4o", "OpenAI API, the paper's judge"),
        ("openai:m@http://h:1/v1", "judged this run before"),
    ]


# --- 13: errors name the form's fields -------------------------------------------------------


def test_errors_name_the_field_not_the_flag() -> None:
    from ccapp.engines.c2eval.config import EvalConfig
    from ccapp.engines.dpo.config import TrainConfig

    assert name_fields("--beta: invalid value 0.0. Fix: give a beta above 0", TrainConfig) == (
        "Beta: invalid value 0.0. Fix: give a beta above 0"
    )
    assert name_fields("--model: cannot download 'org/x'", EvalConfig).startswith("Model: ")
    assert name_fields("--pairs: no such run", TrainConfig) == "Pairs: no such run"
    assert name_fields("--no-such-flag: x", TrainConfig) == "--no-such-flag: x"
    assert name_fields("a plain failure", TrainConfig) == "a plain failure"
    assert short_label("Output folder (optional)") == "Output folder"


async def test_the_launch_error_modal_and_the_refusal_name_the_field(tmp_path: Path) -> None:
    from ccapp.screens.train import TrainFormScreen, TrainLiveScreen

    db = tmp_path / "s.db"
    job = ReplayJob(
        [],
        returncode=2,
        stderr=["ccapp: error: --beta: invalid value 0.0. Fix: give a beta above 0"],
    )
    job.args = ["train", "--pairs", "3", "--beta", "0"]
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 60)) as pilot:
        app.push_screen(TrainLiveScreen(job, "ccapp train", db))
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert app.screen.message == "Beta: invalid value 0.0. Fix: give a beta above 0"
        await pilot.press("enter")
        await pilot.press("escape")
        app.push_screen(TrainFormScreen())
        await wait_for(pilot, lambda: bool(app.screen.query("#train-beta")))
        app.screen.query_one("#train-beta", Input).value = "0"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        notices = [n.message for n in app._notifications]
        assert any("Beta: invalid value 0" in n for n in notices), notices
        assert not any("beta: invalid" in n for n in notices)


async def test_a_run_page_rereads_the_store_when_shown_again(tmp_path: Path) -> None:
    from textual.screen import Screen

    from ccapp.screens.syn_run import SynRunScreen

    db = tmp_path / "s.db"
    run_id = build_syn_store(db)
    with Store.open(db) as store:
        runs.set_status(store, run_id, RunStatus.PAUSED)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        app.open_run(run_id)
        await wait_for(pilot, lambda: isinstance(app.screen, SynRunScreen))
        page = app.screen
        await wait_for(pilot, lambda: "syn · paused" in text_of(page, "#syn-run-summary"))
        app.push_screen(Screen())  # e.g. the live view of its resume
        await pilot.pause()
        with Store.open(db) as store:
            runs.set_status(store, run_id, RunStatus.DONE)
        app.pop_screen()
        await wait_for(pilot, lambda: "syn · done" in text_of(page, "#syn-run-summary"))


async def test_o_on_a_judge_job_that_failed_at_once_opens_the_run_it_was_judging(
    tmp_path: Path,
) -> None:
    """`ccapp judge 1` that fails before its first event never says which run it is: `o`
    opens the run it was given instead of saying there is none."""
    from ccapp.screens.live_run import LiveRunScreen

    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    job = ReplayJob([], returncode=2, stderr=["ccapp: error: the judge cannot be reached"])
    job.args = ["judge", str(run_id), "--judge", "heuristic", "--events", "jsonl"]
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = LiveRunScreen(job, f"ccapp judge {run_id}", db)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.finished)
        while app.screen is not screen:  # the failure's modal
            await pilot.press("enter")
            await pilot.pause()
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run_id == run_id


def test_the_export_dialog_says_what_a_name_would_write_in_its_own_words() -> None:
    from ccapp.screens.run_actions import explain_export

    assert explain_export(RunKind.EVAL, "/tmp/run-5.html") == (
        "writes the HTML report (one page, opens offline)",
        True,
    )
    line, ok = explain_export(RunKind.EVAL, "/tmp/run-5.txt")
    assert not ok and "does not say what to write" in line and ".parquet" in line
    assert "--" not in line and line.count(".html") == 1  # no flags, said once
    line, ok = explain_export(RunKind.SYN, "/tmp/run-2.html")
    assert not ok and "a syn run has no HTML report" in line and "a folder for its pairs" in line


async def test_a_run_another_process_runs_is_followed_on_its_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job left running when the app quit (or a `ccapp eval` in a terminal) is watched
    from its page: it rereads the store until the run stops running."""
    import os

    from ccapp.screens import run_page

    monkeypatch.setattr(run_page, "FOLLOW_S", 0.2)
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    with Store.open(db) as store, store.write() as conn:  # running, in a process that lives
        conn.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, pid = ? WHERE id = ?",
            [os.getpid(), run_id],
        )
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 60)) as pilot:
        page = await open_page(pilot, app, run_id, RunDetailScreen)
        assert "this page follows it" in text_of(page, "#detail-summary")
        assert "of 8" in text_of(page, "#detail-page")
        with Store.open(db) as store, store.write() as conn:  # two more rows are judged away
            conn.execute(
                "DELETE FROM continuations WHERE id IN "
                "(SELECT id FROM continuations WHERE run_id = ? LIMIT 2)",
                [run_id],
            )
        await wait_for(pilot, lambda: "of 6" in text_of(page, "#detail-page"), timeout=5)
        with Store.open(db) as store:
            runs.set_status(store, run_id, RunStatus.DONE)
        await wait_for(pilot, lambda: "follows" not in text_of(page, "#detail-summary"), timeout=5)
        assert page._follow is None  # done: no more rereading
