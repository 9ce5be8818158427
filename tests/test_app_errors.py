"""Worker failures reach the user: a store that is not (or stops being) SQLite shows a modal
that names the file and the fix, once per failure, and nothing on screen or on disk is lost.
Also: thread workers get their values from the UI thread and never touch widgets."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable, Select, Static

from ccapp.app import CcappApp
from ccapp.engines.devices import GIB, Device
from ccapp.screens import history, home, run_detail
from ccapp.screens.compare import CompareScreen
from ccapp.screens.history import HistoryScreen
from ccapp.screens.home import HomeScreen
from ccapp.screens.modals import ErrorModal
from ccapp.screens.run_detail import RunDetailScreen
from ccapp.store import Store, runs

from helpers import build_fixed_store, settle_workers

NOT_A_STORE = b"run_id,model\n1,qwen\n"  # a CSV where the store should be


async def cpu_probe() -> list[Device]:
    return [Device("cpu", "cpu", "Test CPU", 16 * GIB, 8 * GIB, cores=2)]


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


def shown(screen, selector: str) -> str:  # type: ignore[no-untyped-def]
    """What a widget shows now, or "" while the screen is still being built."""
    from textual.css.query import NoMatches

    try:
        return str(screen.query_one(selector).render())
    except NoMatches:
        return ""


@pytest.fixture(autouse=True)
def fast_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timers tick every 0.2 s, so a repeated failure is met within the test's patience."""
    monkeypatch.setattr(history, "REFRESH_S", 0.2)
    monkeypatch.setattr(home, "REFRESH_S", 0.2)


def replace_file(path: Path, content: bytes) -> None:
    """Swap the file's content in one rename, as an editor or a copy would."""
    staged = path.with_name(path.name + ".new")
    staged.write_bytes(content)
    os.replace(staged, path)


async def open_run(pilot, run_id: int) -> RunDetailScreen:  # type: ignore[no-untyped-def]
    """Open a run and wait until its loading (overview, page, one continuation) is over."""
    app = pilot.app
    app.open_run(run_id)
    await wait_for(
        pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run is not None
    )
    screen = app.screen
    await wait_for(pilot, lambda: "continuation 1" in shown(screen, "#detail-one"))
    await settle_workers(app)
    await pilot.pause(0.2)
    return screen


def assert_store_error(screen: object, db: Path, title: str) -> None:
    assert isinstance(screen, ErrorModal)
    assert screen.title_text == title
    assert str(db) in screen.message and "Fix:" in screen.message
    assert "\n" not in screen.message


async def test_a_store_that_is_not_sqlite_shows_a_modal_not_an_empty_screen(tmp_path: Path) -> None:
    db = tmp_path / "runs.csv"
    db.write_bytes(NOT_A_STORE)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert_store_error(app.screen, db, "Reading the runs failed")
        assert "not a SQLite file" in app.screen.message
        await pilot.press("enter")
        await pilot.pause(1.0)  # five refreshes meet the same failure: no second modal
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("r")  # History reads the store itself, and says so itself
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert_store_error(app.screen, db, "Reading the runs failed")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen) and app.is_running
    assert db.read_bytes() == NOT_A_STORE  # refused, never taken for an empty store
    assert not db.with_name("runs.csv-wal").exists()


async def test_a_store_that_becomes_unreadable_is_reported_once_and_the_rows_stay(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    build_fixed_store(db)
    good = db.read_bytes()
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one("#history-runs", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)

        replace_file(db, NOT_A_STORE)
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert_store_error(app.screen, db, "Reading the runs failed")
        await pilot.press("enter")
        await pilot.pause(1.0)
        assert app.screen is screen and table.row_count == 1  # shown once; what was read stays

        replace_file(db, good)
        await pilot.pause(0.6)  # a refresh succeeds: the next failure is news again
        replace_file(db, NOT_A_STORE)
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.press("enter")
        replace_file(db, good)
        await pilot.pause()
    with Store.open(db) as store:
        assert len(runs.list_runs(store)) == 1


async def test_a_failure_behind_another_screen_waits_for_its_own_screen(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    good = db.read_bytes()
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("r")
        history_screen = app.screen
        await wait_for(
            pilot, lambda: history_screen.query_one("#history-runs", DataTable).row_count == 1
        )
        detail = await open_run(pilot, run_id)
        replace_file(db, NOT_A_STORE)  # History's timer fails while the run is on top
        await pilot.pause(1.0)
        assert app.screen is detail
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert_store_error(app.screen, db, "Reading the runs failed")
        await pilot.press("enter")
        await pilot.pause(0.6)
        assert app.screen is history_screen  # and once only, though the timer failed again

        replace_file(db, good)
        await open_run(pilot, run_id)  # the store mends while the run is on top: nothing to tell
        replace_file(db, NOT_A_STORE)
        await pilot.pause(0.3)
        replace_file(db, good)
        await pilot.pause(0.6)
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert app.screen is history_screen


async def test_run_detail_reports_a_page_that_cannot_be_read_and_keeps_the_rows(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    good = db.read_bytes()
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 60)) as pilot:
        screen = await open_run(pilot, run_id)
        rows = screen.query_one("#detail-rows", DataTable)
        assert "of 8" in shown(screen, "#detail-page")
        replace_file(db, NOT_A_STORE)
        screen.query_one("#filter-k", Select).value = 20
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert_store_error(app.screen, db, "Reading the continuations failed")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen and rows.row_count == 8

        await pilot.press("d")  # the delete meets the same file: refused, said so, nothing gone
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert_store_error(app.screen, db, "Delete failed")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
    assert db.read_bytes() == NOT_A_STORE
    replace_file(db, good)
    with Store.open(db) as store:
        assert [r.id for r in runs.list_runs(store)] == [run_id]


async def test_comparing_with_a_run_that_does_not_exist_says_so(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 50)) as pilot:
        app.push_screen(CompareScreen(run_id, 99, db))
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert app.screen.title_text == "Comparing the runs failed"
        assert "no run 99" in app.screen.message and "Fix:" in app.screen.message
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen) and app.is_running


async def test_run_detail_pages_under_the_filter_read_on_the_ui_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_detail, "PAGE", 3)
    ui_thread = threading.get_ident()
    widget_threads: set[int] = set()
    query_one = RunDetailScreen.query_one

    def watched_query_one(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        widget_threads.add(threading.get_ident())
        return query_one(self, *args, **kwargs)

    monkeypatch.setattr(RunDetailScreen, "query_one", watched_query_one)
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 60)) as pilot:
        app.open_run(run_id)
        await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run is not None
        )
        screen = app.screen
        rows = screen.query_one("#detail-rows", DataTable)

        def page() -> tuple[str, list[str]]:
            ks = [str(rows.get_row_at(i)[2]) for i in range(rows.row_count)]
            return str(screen.query_one("#detail-page", Static).render()).split(" (")[0], ks

        await wait_for(pilot, lambda: page()[0] == "continuations 1–3 of 8")
        screen.query_one("#filter-k", Select).value = 20
        await wait_for(pilot, lambda: page() == ("continuations 1–3 of 4", ["20"] * 3))
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: page() == ("continuations 4–4 of 4", ["20"]))
        await pilot.press("right_square_bracket")  # past the last page: stays
        await settle_workers(app)
        await pilot.pause()
        assert page() == ("continuations 4–4 of 4", ["20"])
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: page() == ("continuations 1–3 of 4", ["20"] * 3))
        await wait_for(pilot, lambda: "k=20" in shown(screen, "#detail-one"))
    assert widget_threads == {ui_thread}


async def test_stale_pages_from_an_older_filter_are_dropped(tmp_path: Path) -> None:
    """Two quick filter changes: whichever thread ends last, the page shown is the newest."""
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    app = CcappApp(db, probe_devices=cpu_probe)
    async with app.run_test(size=(120, 60)) as pilot:
        app.open_run(run_id)
        await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.run is not None
        )
        screen = app.screen
        assert isinstance(screen, RunDetailScreen)
        await wait_for(pilot, lambda: "of 8" in shown(screen, "#detail-page"))
        old = run_detail.rows_store.BrowseFilter(k=10)
        screen.query_one("#filter-k", Select).value = 20
        await wait_for(pilot, lambda: "of 4" in shown(screen, "#detail-page"))
        screen.post_message(run_detail.Page([], 8, old, 0))  # a late answer to k = 10
        await pilot.pause(0.1)
        assert "of 4" in shown(screen, "#detail-page")
        assert screen.query_one("#detail-rows", DataTable).row_count == 4


def test_errors_raised_after_the_store_opened_still_name_the_file_and_the_fix() -> None:
    import sqlite3

    from ccapp.errors import UserError
    from ccapp.screens.base import failure_line

    db = Path("/data/ccapp.db")
    malformed = failure_line(sqlite3.DatabaseError("database disk image\nis malformed"), db)
    assert malformed.startswith("/data/ccapp.db: cannot read the store (database disk image is")
    assert "Fix:" in malformed and "\n" not in malformed
    gone = failure_line(FileNotFoundError(2, "No such file or directory", "/out/r.json"), db)
    assert gone.startswith("/out/r.json: No such file or directory. Fix:")
    assert failure_line(UserError("bad", where="x.db", fix="y"), db) == "x.db: bad. Fix: y"
    assert failure_line(KeyError("ks"), db) == "KeyError: 'ks'"
