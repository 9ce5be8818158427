"""The app's first screen, driven by Textual's Pilot, plus its SVG snapshot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from ccapp.app import CcappApp
from ccapp.engines.devices import GIB, Device
from ccapp.screens.home import HomeScreen
from ccapp.store import RunKind, RunStatus, Store, runs

from helpers import settle_workers

FAKE_DEVICES = [
    Device("cuda:0", "cuda", "NVIDIA H200", int(139.8 * GIB), int(137.2 * GIB)),
    Device("cpu", "cpu", "AMD EPYC 9654", 512 * GIB, 480 * GIB, cores=192),
]


async def fake_probe() -> list[Device]:
    return FAKE_DEVICES


async def failing_probe() -> list[Device]:
    raise RuntimeError("probing devices failed: driver mismatch")


def seed_runs(path: Path) -> None:
    with Store.open(path) as store:
        first = runs.create_run(store, RunKind.EVAL, {}, model="qwen_7", judge="gpt-4o")
        runs.set_status(store, first.id, RunStatus.DONE, metrics={"corr_mean": 0.6125})
        runs.create_run(store, RunKind.EVAL, {}, model="tiny", judge="heuristic")
        with store.write() as db:  # fixed dates keep the snapshot stable
            db.execute("UPDATE runs SET created_at = '2026-11-2' || id || 'T09:30:00Z'")


async def settle(pilot) -> None:
    await settle_workers(pilot.app)
    await pilot.pause()


async def test_home_shows_the_store_devices_and_that_there_are_no_runs(tmp_path: Path) -> None:
    app = CcappApp(tmp_path / "ccapp.db", probe_devices=fake_probe)
    async with app.run_test(size=(110, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        assert str(tmp_path / "ccapp.db") in str(
            app.screen.query_one("#store-line", Static).render()
        )
        devices = app.screen.query_one("#devices", DataTable)
        assert [devices.get_row_at(i)[0] for i in range(devices.row_count)] == ["cuda:0", "cpu"]
        assert app.screen.query_one("#no-runs").display
        assert not app.screen.query_one("#runs").display


async def test_home_lists_runs_and_sees_new_ones_on_refresh(tmp_path: Path) -> None:
    path = tmp_path / "ccapp.db"
    seed_runs(path)
    app = CcappApp(path, probe_devices=fake_probe)
    async with app.run_test(size=(110, 30)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs", DataTable)
        assert [table.get_row_at(i)[:3] for i in range(table.row_count)] == [
            ["2", "eval", "running"],
            ["1", "eval", "done"],
        ]
        assert table.get_row_at(1)[5] == "0.613"
        with Store.open(path) as store:  # another process writes while the app is open
            runs.create_run(store, RunKind.SYN, {}, model="tiny")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert table.row_count == 3


async def test_a_failing_device_probe_is_shown_not_fatal(tmp_path: Path) -> None:
    app = CcappApp(tmp_path / "ccapp.db", probe_devices=failing_probe)
    async with app.run_test(size=(110, 30)) as pilot:
        await settle(pilot)
        devices = app.screen.query_one("#devices", DataTable)
        assert "driver mismatch" in devices.get_row_at(0)[1]
        assert app.is_running


async def test_q_quits(tmp_path: Path) -> None:
    app = CcappApp(tmp_path / "ccapp.db", probe_devices=fake_probe)
    async with app.run_test() as pilot:
        await pilot.press("q")
        await asyncio.sleep(0.05)
    assert app.return_code == 0


@pytest.mark.slow
async def test_the_real_probe_runs_in_a_child_process(tmp_path: Path) -> None:
    app = CcappApp(tmp_path / "ccapp.db")
    async with app.run_test(size=(110, 30)) as pilot:
        await settle(pilot)
        devices = app.screen.query_one("#devices", DataTable)
        assert devices.get_row_at(devices.row_count - 1)[0] == "cpu"
