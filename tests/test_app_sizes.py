"""Every kind of page at the smallest supported terminal (80×24) and a large one (160×48):
snapshots, and a check that the two key lines (the screen's keys and the app's mode keys)
are whole, nothing pushed off the edge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from test_app_snapshots import LIVE_EVENTS, fake_probe, settle, until
from test_run_pages import build_train_store
from textual.widgets import Footer

from ccapp.app import CcappApp
from ccapp.screens.compare import CompareScreen
from ccapp.screens.jobs import ReplayJob
from ccapp.screens.live_run import LiveRunScreen
from ccapp.screens.run_page import run_page
from ccapp.screens.widgets import MODE_KEYS, ModeBar
from ccapp.store import RunKind, Store

from helpers import build_fixed_store

SIZES = [(80, 24), (160, 48)]
FIXED = "2026-11-01T10:00:00Z"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CcappApp:
    """Two eval runs (fixed dates), a syn run and a train run on its pairs, in ./ccapp.db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    db = Path("ccapp.db")
    build_fixed_store(db)
    build_train_store(db, Path("out"))
    build_fixed_store(db)
    with Store.open(db) as store, store.write() as conn:  # dates that do not move
        conn.execute("UPDATE runs SET created_at = ?, updated_at = ?, finished_at = ?", [FIXED] * 3)
    return CcappApp(db, probe_devices=fake_probe)


def pushing(screen: Callable[[], Any]) -> Callable[[Any], Awaitable[None]]:
    async def push(pilot: Any) -> None:
        pilot.app.push_screen(screen())
        await settle(pilot)

    return push


async def live_run(pilot: Any) -> None:
    """The live view holding its job open: wait for its paint, not for its worker to end."""
    screen = LiveRunScreen(ReplayJob(LIVE_EVENTS, hold=True), "eval m", DB)
    pilot.app.push_screen(screen)
    await until(pilot, lambda: bool(screen.state.metrics) and not screen._dirty)


def pressing(*keys: str) -> Callable[[Any], Awaitable[None]]:
    async def press(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    return press


def demo_events() -> list[dict[str, Any]]:
    """A toy demo's whole run, as `ccapp demo --events jsonl` tells it: five stages, then a
    result of the real size (four k's, the fluency rows, a verdict of two lines)."""
    from ccapp.engines.demo.config import TOY_STAGES as STAGES

    def metrics(corr: list[float]) -> dict[str, Any]:
        ks = ("10", "20", "40", "60")
        mean = round(sum(corr) / len(corr), 4)
        return {
            "corr": dict(zip(ks, corr)),
            "corr_mean": mean,
            "ci95": {
                **{k: [max(0, c - 0.03), c + 0.03] for k, c in zip(ks, corr)},
                "mean": [mean - 0.02, mean + 0.02],
            },
        }

    events: list[dict[str, Any]] = []
    for stage in STAGES:
        events += [
            {"event": "demo_stage", "stage": stage, "state": "started"},
            {"event": "demo_stage", "stage": stage, "state": "done", "seconds": 31.0},
        ]
    events.append(
        {
            "event": "demo_finished",
            "runs": {"eval_before": 1, "syn": 2, "train": 3, "eval_after": 4},
            "before": metrics([0.0125, 0.025, 0.0375, 0.05]),
            "after": metrics([0.1125, 0.1, 0.0875, 0.075]),
            "fluency_before": {"distinct2_per_continuation": 0.97, "degenerate_share": 0.0125},
            "fluency_after": {"distinct2_per_continuation": 0.95, "degenerate_share": 0.025},
            "verdict": "Course-correction rose: Corr_mean 0.031 → 0.094, Δ +0.063 [+0.041, "
            "+0.084]; the paired 95% interval of Δ Corr_mean (100 held-out requests) lies "
            "above 0 and fluency held.",
            "note": "This is a toy model trained for minutes on a CPU: it shows the loop's "
            "mechanics (eval → syn → DPO → eval), not a safety result.",
        }
    )
    return events


async def demo_done(pilot: Any) -> None:
    """The demo's page once it is over: the verdict is what it is for, in view at 80×24."""
    from ccapp.screens.demo import DemoScreen

    screen = DemoScreen(ReplayJob(demo_events()), "ccapp demo", DB)
    pilot.app.push_screen(screen)
    await until(pilot, lambda: screen.finished and not screen._dirty)
    await settle(pilot)


DB = Path("ccapp.db")
PAGES: dict[str, Callable[[Any], Awaitable[None]]] = {
    "home": pressing(),
    "eval_form": pressing("f2"),
    "live_run": live_run,
    "run_eval": pushing(lambda: run_page(1, DB, RunKind.EVAL)),
    "run_syn": pushing(lambda: run_page(2, DB, RunKind.SYN)),
    "run_train": pushing(lambda: run_page(3, DB, RunKind.TRAIN)),
    "history": pressing("f3"),
    "compare": pushing(lambda: CompareScreen(1, 4, DB)),
    "demo_form": pressing("d"),
    "demo_done": demo_done,
}


def key_lines_fit(app: CcappApp) -> None:
    """The screen's footer keys and the mode bar end inside the terminal's width."""
    width = app.size.width
    footer = app.screen.query_one(Footer)
    keys = list(footer.children)
    assert keys, "the footer shows the screen's keys"
    assert max(k.region.right for k in keys) <= width
    bar = str(app.screen.query_one(ModeBar).render())
    assert all(f"{key} {text}" in bar for key, text in MODE_KEYS)
    assert len(bar.rstrip()) <= width


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_fits(app: CcappApp, snap_compare, page: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    prepare = PAGES[page]

    async def run_before(pilot: Any) -> None:
        await prepare(pilot)
        key_lines_fit(pilot.app)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_every_form_label_fits_its_box_at_80_columns(app: CcappApp) -> None:
    """A label cut off mid-word ("Max steps (optional; default: the e…") says nothing."""

    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("f2", "f4", "f5", "f1", "d"):
            await pilot.press(key)
            await settle(pilot)
            labels = list(app.screen.query(".field > Label"))
            assert labels or key == "f1"
            for label in labels:
                text = str(label.render())
                assert len(text) <= label.parent.content_region.width, (key, text)


async def test_a_toast_is_wide_enough_to_read_at_80_columns(app: CcappApp) -> None:
    """Textual's toasts are half the screen wide: a report's path broke over four lines."""
    from textual.widgets._toast import Toast

    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        app.notify("report written to /home/someone/reports/run-12.json", title="Exported")
        await until(pilot, lambda: bool(app.screen.query(Toast)))
        await settle(pilot)
        (toast,) = app.screen.query(Toast)
        assert toast.region.width >= 64 and toast.region.right <= 80
        assert toast.region.height <= 5  # title, one line of text, and its padding


async def test_the_demos_verdict_is_in_view_at_80_by_24(app: CcappApp) -> None:
    from ccapp.screens.demo import DemoScreen

    async with app.run_test(size=(80, 24)) as pilot:
        await demo_done(pilot)
        screen = app.screen
        assert isinstance(screen, DemoScreen)
        box = screen.query_one("#demo-result-box")
        shown = screen.query_one("#demo-result")
        assert box.region.bottom <= 24 - 2  # above the two key lines
        assert shown.region.height <= box.region.height  # whole, the verdict included
