"""The command line's contract: exit codes, --db placement, runs list/show/delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccapp.cli import main
from ccapp.store import RunKind, RunStatus, Store, runs

from helpers import run_ccapp


@pytest.fixture
def store_with_runs(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with Store.open(path) as store:
        first = runs.create_run(store, RunKind.EVAL, {"k": [10]}, model="tiny", judge="heuristic")
        runs.set_status(store, first.id, RunStatus.DONE, metrics={"corr_mean": 0.125})
        runs.create_run(store, RunKind.SYN, {}, model="tiny", parent_id=first.id)
    return path


def test_runs_list_as_json_lines(store_with_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", "--db", str(store_with_runs), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["run_id"], r["kind"], r["status"]) for r in rows] == [
        (2, "syn", "running"),
        (1, "eval", "done"),
    ]
    assert rows[1]["metrics"] == {"corr_mean": 0.125}


def test_db_works_before_or_after_the_command(
    store_with_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(store_with_runs), "runs", "list", "--json"]) == 0
    assert main(["runs", "--db", str(store_with_runs)]) == 0
    out = capsys.readouterr().out
    assert out.count('"run_id"') == 2 and "0.125" in out


def test_db_from_the_config_file(
    store_with_runs: Path, ccapp_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (ccapp_home / "config").mkdir(parents=True)
    (ccapp_home / "config" / "config.toml").write_text(f'[store]\npath = "{store_with_runs}"\n')
    assert main(["runs", "list", "--json"]) == 0
    assert capsys.readouterr().out.count('"run_id"') == 2


def test_runs_show_and_delete(store_with_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show", "1", "--db", str(store_with_runs), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip())
    assert shown["config"] == {"k": [10]} and shown["judge"] == "heuristic"
    assert main(["runs", "delete", "1", "--yes", "--db", str(store_with_runs)]) == 0
    with Store.open(store_with_runs) as store:
        assert [r.id for r in runs.list_runs(store)] == [2]
        assert runs.get_run(store, 2).parent_id is None


def test_runs_show_is_for_a_person_the_json_for_a_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A researcher reads Corr@k with its interval per k, and the settings in a line; the
    whole config and metrics are what --json is for."""
    from helpers import build_fixed_store

    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    assert main(["runs", "show", str(run_id), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "Corr@k" in out and "95% CI" in out
    assert "settings" in out and "paths=" in out
    assert '"corr"' not in out and "--json" in out
    assert len(out.splitlines()) < 40


def test_delete_without_yes_and_without_a_terminal_asks_for_yes(store_with_runs: Path) -> None:
    result = run_ccapp("runs", "delete", "1", "--db", str(store_with_runs), input="")
    assert result.returncode == 2 and "--yes" in result.stderr
    with Store.open(store_with_runs) as store:
        assert len(runs.list_runs(store)) == 2


def test_a_missing_run_is_exit_2_with_the_fix(store_with_runs: Path) -> None:
    result = run_ccapp("runs", "show", "99", "--db", str(store_with_runs))
    assert result.returncode == 2
    assert "no run 99" in result.stderr and "ccapp runs list" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_are_exit_2() -> None:
    assert run_ccapp("runs", "show", "abc").returncode == 2
    assert run_ccapp("no-such-command").returncode == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[store\npath = 1", "invalid TOML"),
        ("[store]\npath = 1\n", "[store] path must be a str"),
        ('[models]\ncolour = "red"\n', "unknown setting [models] colour"),
        ('title = "x"\n', "'title' must be a [section]"),
    ],
)
def test_a_bad_config_file_names_the_file_and_setting(
    ccapp_home: Path, config: str, message: str
) -> None:
    (ccapp_home / "config").mkdir(parents=True)
    (ccapp_home / "config" / "config.toml").write_text(config)
    result = run_ccapp("runs", "list")
    assert result.returncode == 2
    assert "config.toml" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_default_store_lives_under_ccapp_home(ccapp_home: Path) -> None:
    result = run_ccapp("runs", "list")
    assert result.returncode == 0
    assert (ccapp_home / "data" / "ccapp.db").exists()


def test_runs_list_into_a_pipe_prints_whole_values_tab_separated(store_with_runs: Path) -> None:
    # A table cut to the pipe's 80 columns hid the created column; a pipe gets every value whole.
    result = run_ccapp("runs", "list", "--db", str(store_with_runs))
    assert result.returncode == 0, result.stderr
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert header == ["id", "kind", "status", "model", "judge", "Corr_mean", "created"]
    assert [row[:6] for row in rows] == [
        ["2", "syn", "running", "tiny", "–", "–"],
        ["1", "eval", "done", "tiny", "heuristic", "0.125"],
    ]
    with Store.open(store_with_runs) as store:
        assert [row[6] for row in rows] == [runs.get_run(store, i).created_at for i in (2, 1)]


@pytest.mark.parametrize("columns", [80, 100])
def test_runs_list_on_a_narrow_terminal_keeps_every_timestamp_and_the_models_end(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
) -> None:
    """Rich squeezed the created column to "2026-12-02…" on 80 columns; the model and judge
    give way instead (the model from its start: its end names it)."""
    from ccapp.store import RunKind, Store, runs

    db = tmp_path / "s.db"
    model = "/home/researcher/checkpoints/llama-3-8b-instruct-dpo-c2syn-final"
    with Store.open(db) as store:
        made = runs.create_run(store, RunKind.EVAL, {}, model=model, judge="openai:gpt-4o")
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["runs", "list", "--db", str(db)]) == 0
    import re

    lines = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).splitlines()
    assert all(len(line) <= columns for line in lines), lines
    row = next(line for line in lines if line.lstrip("│ ").startswith(str(made.id)))
    assert made.created_at[:16].replace("T", " ") in row
    assert "…" in row and "final" in row
