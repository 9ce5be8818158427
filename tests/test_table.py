"""`ccapp table`: the paper's table of eval runs — the report's numbers, the paired Δ of
`compare_runs`, the union of k — as Markdown that renders, CSV that pandas reads and LaTeX
that compiles."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from test_comparison import REQUESTS, add_eval_run

from ccapp.cli import main
from ccapp.engines.c2eval.comparison import compare_runs
from ccapp.engines.c2eval.report import run_metrics
from ccapp.engines.c2eval.table import build_table, latex_escape, render
from ccapp.store import RunKind, Store, runs

BEFORE = {i: i % 10 for i in range(40)}  # corrected paths of 10, per request
AFTER = {i: min(10, i % 10 + 2) for i in range(40)}  # two more on most requests


def _store(tmp_path: Path) -> tuple[Path, list[int]]:
    """Runs 1 and 2 on the same 40 requests (k 10, 20), run 3 on 20 of them with k 10, 20, 40."""
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        ids = [
            add_eval_run(store, REQUESTS, BEFORE, ks=(10, 20)),
            add_eval_run(store, REQUESTS, AFTER, ks=(10, 20)),
            add_eval_run(store, REQUESTS[:20], {i: 5 for i in range(20)}, ks=(10, 20, 40)),
        ]
    return db, ids


def _table_cli(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["table", *args, "--db", str(db)]) == 0
    return capsys.readouterr().out


def test_the_csv_holds_the_reports_numbers_and_reads_into_pandas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    db, (a, b, _) = _store(tmp_path)
    frame = pd.read_csv(io.StringIO(_table_cli(db, capsys, str(a), str(b), "--format", "csv")))
    assert list(frame["run"]) == [a, b]
    with Store.open(db) as store:
        for _, line in frame.iterrows():
            metrics = run_metrics(store, runs.get_run(store, int(line["run"])), "heuristic")
            for k in ("10", "20"):
                assert line[f"corr@{k}"] == metrics["corr"][k]
                assert [line[f"corr@{k}_low"], line[f"corr@{k}_high"]] == metrics["ci95"][k]
            assert line["corr_mean"] == metrics["corr_mean"]
            assert [line["corr_mean_low"], line["corr_mean_high"]] == metrics["ci95"]["mean"]
    assert frame["corr@10"].tolist() == [0.45, 0.64]
    assert frame["requests"].tolist() == [40, 40] and set(frame["judge"]) == {"heuristic"}


def test_the_markdown_is_a_pipe_table_that_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from markdown_it import MarkdownIt

    db, (a, b, _) = _store(tmp_path)
    with Store.open(db) as store:  # a name that would break a naive table: | and _
        store.conn.execute("UPDATE runs SET model = 'org/my_model|v2' WHERE id = ?", [a])
        store.conn.commit()
    text = _table_cli(db, capsys, str(a), str(b))
    lines = text.splitlines()
    assert lines[0].startswith("| Run | Model | Judge | Corr@10 | Corr@20 | Corr\\_mean |")
    assert set(lines[1].replace("|", "").split()) <= {"---", "---:"}
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("</th>") == 6 and html.count("<tr>") == 3
    assert "<td>org/my_model|v2</td>" in html  # the | and _ came through as text
    assert "0.450 [0.360, 0.542]" in html


def test_a_baseline_adds_the_paired_delta_of_compare_runs_or_says_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, (a, b, c) = _store(tmp_path)
    with Store.open(db) as store:
        table = build_table(store, [b, c], baseline=a)
        expected = compare_runs(store, runs.get_run(store, a), runs.get_run(store, b))
    assert [row.run_id for row in table.rows] == [a, b, c]  # the baseline comes first
    baseline, paired, unpaired = table.rows
    assert baseline.is_baseline and baseline.delta is None
    for k in ("10", "20"):
        entry = expected["by_k"][k]
        delta = paired.delta[k]  # type: ignore[index]
        assert (delta.value, [delta.low, delta.high]) == (entry["delta"], entry["ci95"])
        assert delta.excludes_zero  # two more corrected paths on 32 of 40 requests
    assert paired.delta["mean"].value == expected["mean"]["delta"]  # type: ignore[index]
    assert unpaired.delta is None and "not the same requests" in (unpaired.delta_note or "")

    markdown = _table_cli(db, capsys, str(b), str(c), "--baseline", str(a))
    assert f"| Δ {b} | vs run {a} | heuristic | +0.190\\* [+0.180, +0.198]" in markdown
    assert f"run {c}: no Δ: not the same requests (run {a}: 40, run {c}: 20" in markdown
    csv = _table_cli(db, capsys, str(b), str(c), "--baseline", str(a), "--format", "csv")
    import pandas as pd

    frame = pd.read_csv(io.StringIO(csv)).set_index("run")
    assert frame.loc[b, "delta@10"] == 0.19 and frame.loc[b, "delta_mean"] == 0.19
    assert pd.isna(frame.loc[c, "delta@10"]) and "no Δ" in frame.loc[c, "notes"]
    assert pd.isna(frame.loc[a, "delta@10"])


def test_runs_with_other_k_get_the_union_of_columns_and_dashes_named_in_the_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, (a, _, c) = _store(tmp_path)
    text = _table_cli(db, capsys, str(a), str(c))
    header, _, first, second = text.splitlines()[:4]
    assert "| Corr@40 |" in header
    assert first.split(" | ")[5] == "–"  # run a has no k = 40
    assert second.split(" | ")[5] == "0.500 [0.500, 0.500]"
    assert f"k not evaluated by the run (run {a}: k = 40)" in text
    assert "Corr\\_mean is each run's mean over its own k" in text
    # with a baseline whose k differ, the per-k Δ are given where both have the k, and
    # there is no Δ Corr_mean: means over different prefix lengths are different numbers
    with Store.open(db) as store:
        d = add_eval_run(store, REQUESTS, AFTER, ks=(10, 20, 40))
        table = build_table(store, [d], baseline=a)
    row = table.rows[1]
    assert row.delta is not None and set(row.delta) == {"10", "20"}  # no Corr_mean Δ either
    assert "different k" in (row.delta_note or "")
    delta_line = render(table, "markdown").splitlines()[4]
    assert delta_line.startswith(f"| Δ {d} |") and delta_line.endswith("| – | – |")


def test_the_latex_is_booktabs_that_compiles_with_its_text_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, (a, b, c) = _store(tmp_path)
    with Store.open(db) as store:
        store.conn.execute("UPDATE runs SET model = 'my_model 100%' WHERE id = ?", [a])
        store.conn.commit()
    text = _table_cli(db, capsys, str(a), str(b), str(c), "--baseline", str(a), "--format", "latex")
    assert text.index("\\begin{tabular}{lllcccc}") < text.index("\\toprule")
    assert text.index("\\toprule") < text.index("\\midrule") < text.index("\\bottomrule")
    assert text.index("\\bottomrule") < text.rindex("\\end{tabular}")  # cells nest tabulars
    assert "my\\_model 100\\%" in text and "Corr\\_mean" in text
    assert "$\\Delta$" in text and "another row limit" in text  # the note on the unpaired run
    assert latex_escape("--limit") == "-{}-limit"  # a flag, not an en dash
    assert latex_escape("a_b & c#1 {x} ~^\\") == (
        "a\\_b \\& c\\#1 \\{x\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
    )
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed: the structure was checked, not the compile")
    (tmp_path / "table.tex").write_text(text)
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\begin{document}"
        "\\begin{table}\\centering\\input{table}\\end{table}\\end{document}\n"
    )
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000


def test_a_run_without_the_judge_or_not_an_eval_run_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, (a, *_) = _store(tmp_path)
    with Store.open(db) as store:
        train = runs.create_run(store, RunKind.TRAIN, {}, model="tiny").id
    assert main(["table", str(a), "--judge", "openai:gpt-4o", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"run {a} has no verdicts from openai:gpt-4o" in err and "ccapp judge" in err
    assert main(["table", str(a), str(train), "--db", str(db)]) == 2
    assert f"run {train} is a train run, not an eval run" in capsys.readouterr().err
    assert main(["table", str(a), "--baseline", "99", "--db", str(db)]) == 2
    assert "no run 99" in capsys.readouterr().err


def test_a_k_without_verdicts_and_a_single_request_are_marked_not_shown_as_numbers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        one = add_eval_run(store, REQUESTS[:1], {0: 3}, ks=(10, 20))
        store.conn.execute(
            "UPDATE verdicts SET label = 'error' WHERE continuation_id IN (SELECT t.id FROM "
            "continuations t JOIN cells c ON c.id = t.cell_id WHERE c.k = 20)"
        )
        store.conn.commit()
        table = build_table(store, [one])
    text = render(table, "markdown")
    assert "| 0.300† | n/a | n/a |" in text
    assert "†: from a single request, so no interval." in text
    assert "n/a: no yes/no verdict at that k, hence no Corr\\_mean" in text
