"""`ccapp export`: the versioned report (pinned by a golden file) and the paper's list."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ccapp.cli import main
from ccapp.engines.report import SCHEMA_VERSION, build_report
from ccapp.store import Store

from helpers import build_fixed_store, run_ccapp

GOLDEN = Path(__file__).parent / "golden" / "report_v1.json"


def test_the_report_matches_the_golden_file(tmp_path: Path) -> None:
    run_id = build_fixed_store(tmp_path / "s.db")
    with Store.open(tmp_path / "s.db") as store:
        report = build_report(store, run_id, now="2026-11-02T00:00:00Z", version="0.0.0-golden")
    assert next(iter(report)) == "schema_version" and report["schema_version"] == SCHEMA_VERSION
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("CCAPP_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "report schema changed: bump SCHEMA_VERSION and update the golden file"
    )


def test_the_report_carries_every_judges_metrics(tmp_path: Path) -> None:
    run_id = build_fixed_store(tmp_path / "s.db")
    with Store.open(tmp_path / "s.db") as store:
        report = build_report(store, run_id)
    assert report["judges"] == ["heuristic", "openai:gpt-4o"]
    assert report["metrics"]["heuristic"]["corr"] == {"10": 0.75, "20": 0.5}
    assert report["metrics"]["openai:gpt-4o"]["corr"] == {
        "10": pytest.approx(1 / 3, abs=1e-4),
        "20": 0.5,
    }
    assert report["metrics"]["openai:gpt-4o"]["unparsed"] == {"10": 1, "20": 0}
    assert report["paper"]["heuristic"] == [0.75, 0.5, 0.625]
    assert len(report["continuations"]) == 8 and len(report["cells"]) == 4


def test_cli_paper_format_and_no_silent_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    out = tmp_path / "paper.json"
    assert (
        main(["export", str(run_id), "--format", "paper", "--out", str(out), "--db", str(db)]) == 0
    )
    assert json.loads(out.read_text()) == [0.75, 0.5, 0.625]
    again = run_ccapp(
        "export", str(run_id), "--format", "paper", "--out", str(out), "--db", str(db)
    )
    assert again.returncode == 2 and "--force" in again.stderr
    assert (
        main(
            [
                "export",
                str(run_id),
                "--format",
                "paper",
                "--judge",
                "openai:gpt-4o",
                "--out",
                str(out),
                "--force",
                "--db",
                str(db),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())[0] == pytest.approx(1 / 3, abs=1e-4)


def test_cli_report_goes_to_the_reports_folder_by_default(
    tmp_path: Path, ccapp_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    assert main(["export", str(run_id), "--db", str(db)]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written == ccapp_home / "data" / "reports" / f"run-{run_id}.json"
    assert json.loads(written.read_text())["run"]["id"] == run_id
