"""`ccapp export`: the versioned report (pinned by a golden file) and the paper's list."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ccapp.cli import main
from ccapp.engines.c2eval.report import SCHEMA_VERSION, build_report
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
    # The list is positional: with other k's than the paper's, the command says which.
    assert "[Corr@10, Corr@20, Corr_mean]" in capsys.readouterr().err
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


def test_the_suffix_of_out_picks_the_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--out run.html` is the HTML page and `--out rows.csv` the samples table, as if
    --format said so; JSON is never written under a name that promises something else."""
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    page, table = tmp_path / "run.html", tmp_path / "rows.csv"
    assert main(["export", str(run_id), "--out", str(page), "--db", str(db)]) == 0
    assert page.read_text().lower().startswith("<!doctype html>")
    assert main(["export", str(run_id), "--out", str(table), "--db", str(db)]) == 0
    assert table.read_text().startswith("run_id,")
    assert "rows (csv)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "format_", "said"),
    [
        ("r.html", "report", "--format report does not write .html files"),
        ("r.json", "html", "--format html does not write .json files"),
        ("notes.txt", None, "'NAME' does not say what to write"),
    ],
)
def test_a_format_the_file_name_contradicts_is_refused(
    tmp_path: Path, name: str, format_: str | None, said: str
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    out = tmp_path / name
    asked = ["--format", format_] if format_ else []
    done = run_ccapp("export", str(run_id), "--out", str(out), *asked, "--db", str(db))
    assert done.returncode == 2, done.stderr
    assert said.replace("NAME", str(out)) in done.stderr
    assert "--out" in done.stderr and not out.exists()


def _error_out_k20(db: Path, run_id: int, judge: str) -> None:
    """Every verdict of `judge` at k=20 becomes an error, as when the API failed there."""
    from ccapp.store import evals as rows_store

    with Store.open(db) as store:
        at_20 = [t for t in rows_store.continuations(store, run_id) if t.k == 20]
        rows_store.save_verdicts(
            store, [(t.id, rows_store.NewVerdict(judge, "error", raw="HTTP 500")) for t in at_20]
        )


def test_paper_format_refuses_a_run_with_a_k_without_verdicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    _error_out_k20(db, run_id, "openai:gpt-4o")
    out = tmp_path / "paper.json"
    args = ["export", str(run_id), "--format", "paper", "--judge", "openai:gpt-4o"]
    refused = run_ccapp(*args, "--out", str(out), "--db", str(db))
    assert refused.returncode == 2 and not out.exists()
    assert "no Corr_mean from openai:gpt-4o" in refused.stderr
    assert "k=20: 0 unparsed, 4 errors" in refused.stderr
    with Store.open(db) as store:
        report = build_report(store, run_id)
    gpt = report["metrics"]["openai:gpt-4o"]
    assert gpt["corr_mean"] is None and gpt["no_verdicts"] == ["20"]
    assert report["paper"]["openai:gpt-4o"] == [gpt["corr"]["10"], None, None]
    assert report["per_k"]["openai:gpt-4o"][1] | {"ci95": None} == {
        "k": 20,
        "corr": None,
        "ci95": None,
        "n": 0,
        "unparsed": 0,
        "errors": 4,
        "interval_requests": 0,
    }


def test_the_report_of_a_trained_models_eval_carries_the_paired_delta_vs_its_baseline(
    tmp_path: Path,
) -> None:
    from ccapp.store import RunKind, runs

    db = tmp_path / "s.db"
    before = build_fixed_store(db)
    after = build_fixed_store(db)
    with Store.open(db) as store:
        syn = runs.create_run(store, RunKind.SYN, {}, parent_id=before).id
        train = runs.create_run(store, RunKind.TRAIN, {}, parent_id=syn).id
        with store.write() as w:
            w.execute("UPDATE runs SET parent_id = ? WHERE id = ?", [train, after])
        report = build_report(store, after)
        assert build_report(store, before)["baseline"] is None
    baseline = report["baseline"]
    assert baseline["run_id"] == before and baseline["paired"] and baseline["reason"] is None
    assert set(baseline["by_judge"]) == {"heuristic", "openai:gpt-4o"}
    same = baseline["by_judge"]["heuristic"]  # the same verdicts: Δ is 0, and so is its spread
    assert same["mean"] == {"delta": 0.0, "ci95": [0.0, 0.0], "excludes_zero": False, "requests": 2}
    assert same["by_k"]["10"]["delta"] == 0.0 and same["requests"] == 2
