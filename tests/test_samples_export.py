"""`ccapp export RUN --format samples`: one row per continuation × judge verdict, read as it is
by pandas and datasets, and Corr@k recomputed from those rows equals the store's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ccapp.cli import main
from ccapp.engines.c2eval.report import build_report
from ccapp.engines.c2eval.samples import COLUMNS, export_samples
from ccapp.errors import UserError
from ccapp.store import RunKind, Store, runs
from ccapp.store import evals as rows_store

from fake_openai import FakeOpenAIServer
from helpers import build_fixed_store, run_ccapp

NAMES = [name for name, _ in COLUMNS]


def mixed_answer(body: dict[str, Any], index: int) -> str:
    """A judge whose yes/no depends on the continuation only (so a re-ask agrees), with
    some answers that are neither, which must come out as unparsed."""
    question = body["messages"][-1]["content"]
    digest = int(hashlib.sha256(question.encode()).hexdigest(), 16)
    return "Maybe." if digest % 13 == 0 else ("Yes." if digest % 3 == 0 else "No.")


@pytest.fixture(scope="module")
def judged_run(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, int, str]]:
    """A 180-continuation eval run (20 requests × k 10,20,40 × 3 paths) made by `ccapp eval`
    with the heuristic judge, then judged again by `ccapp judge` with an OpenAI-compatible
    judge on loopback: two judges, 360 verdicts."""
    base = tmp_path_factory.mktemp("samples-run")
    env = {"CCAPP_HOME": str(base / "home"), "HF_HUB_OFFLINE": "1"}
    db = base / "s.db"
    settings = {
        "--model": str(tiny_model_dir),
        "--data": str(c2eval_file),
        "--limit": "20",
        "--k": "10,20,40",
        "--paths": "3",
        "--device": "cpu",
        "--judge": "heuristic",
        "--db": str(db),
    }
    made = run_ccapp(
        "eval", *[part for pair in settings.items() for part in pair], "--json", env=env
    )
    assert made.returncode == 0, made.stderr
    run_id = json.loads(made.stdout.strip().splitlines()[-1])["run_id"]
    server = FakeOpenAIServer(answer=mixed_answer)
    judge = f"openai:mixed@{server.url}"
    try:
        judged = run_ccapp("judge", str(run_id), "--judge", judge, "--db", str(db), env=env)
        assert judged.returncode == 0, judged.stderr
    finally:
        server.close()
    yield db, run_id, judge


def test_a_two_judge_run_exports_360_rows_that_give_the_stores_corr_at_k(
    judged_run: tuple[Path, int, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    db, run_id, judge = judged_run
    out = tmp_path / "samples.parquet"
    assert (
        main(["export", str(run_id), "--format", "samples", "--out", str(out), "--db", str(db)])
        == 0
    )
    assert capsys.readouterr().out.strip() == f"{out}: 360 rows (parquet)"

    df = pd.read_parquet(out)
    assert list(df.columns) == NAMES and len(df) == 360
    assert sorted(df.judge.unique()) == sorted(["heuristic", judge])
    assert df.groupby("judge").size().to_dict() == {"heuristic": 180, judge: 180}
    assert df.continuation_id.nunique() == 180 and set(df.k) == {10, 20, 40}
    assert (df.run_id == run_id).all() and df.request.str.len().gt(0).all()
    assert (df.label == "unparsed").any(), "the judge's 'Maybe.' answers must stay unparsed"

    # the README's recipe: Corr@k per k from the rows alone
    judged = df[df.label.isin(["yes", "no"])]
    corr = judged.assign(corrected=judged.label.eq("yes")).groupby(["judge", "k"]).corrected.mean()
    with Store.open(db) as store:
        metrics = build_report(store, run_id)["metrics"]
    for name in ("heuristic", judge):
        expected = {int(k): v for k, v in metrics[name]["corr"].items()}
        got = {int(k): round(float(v), 4) for k, v in corr[name].items()}
        assert got == expected, name
        unparsed = df[(df.judge == name) & (df.label == "unparsed")].groupby("k").size()
        assert {str(k): int(unparsed.get(k, 0)) for k in (10, 20, 40)} == metrics[name]["unparsed"]
    assert 0 < metrics[judge]["corr"]["10"] < 1, "a judge with mixed answers tests the recipe"


def test_datasets_reads_the_parquet_file_as_it_is(
    judged_run: tuple[Path, int, str], tmp_path: Path
) -> None:
    import datasets

    db, run_id, _ = judged_run
    out = tmp_path / "samples.parquet"
    with Store.open(db) as store:
        assert export_samples(store, run_id, out).rows == 360
    loaded = datasets.load_dataset(
        "parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.num_rows == 360 and loaded.column_names == NAMES
    assert loaded.features["k"].dtype == "int64" and loaded.features["relapse"].dtype == "bool"
    first = loaded[0]
    assert first["run_id"] == run_id and isinstance(first["continuation"], str)


def test_jsonl_csv_and_small_chunks_give_the_same_rows(
    judged_run: tuple[Path, int, str], tmp_path: Path
) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    db, run_id, _ = judged_run
    with Store.open(db) as store:
        big = export_samples(store, run_id, tmp_path / "big.parquet")
        small = export_samples(store, run_id, tmp_path / "small.parquet", rows_per_chunk=14)
        export_samples(store, run_id, tmp_path / "s.jsonl")
        export_samples(store, run_id, tmp_path / "s.csv")
    assert big.rows == small.rows == 360
    # streamed: every chunk of cells is its own row group, written before the next is read
    assert pq.ParquetFile(tmp_path / "small.parquet").metadata.num_row_groups > 20
    reference = pd.read_parquet(tmp_path / "big.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "small.parquet"), reference)
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(lines) == 360 and list(lines[0]) == NAMES
    from_jsonl = pd.DataFrame(lines)
    from_csv = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert list(from_csv.columns) == NAMES and len(from_csv) == 360
    for column in ("continuation_id", "judge", "label", "k", "path", "new_tokens"):
        assert from_jsonl[column].tolist() == reference[column].tolist(), column
        assert from_csv[column].tolist() == reference[column].tolist(), column
    assert from_csv.continuation.tolist() == reference.continuation.tolist()


def test_rows_hold_what_the_store_holds(tmp_path: Path) -> None:
    """Every field against the hand-written store: spans, measured-only relapse and tokens,
    the run's revision, and an unjudged continuation kept as one row without a verdict."""
    import pandas as pd

    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    with Store.open(db) as store:
        with store.write() as w:
            w.execute(
                "UPDATE runs SET config = json_set(config, '$.model_revision', 'gguf-sha256:ab12')"
            )
        cell = rows_store.get_cells(store, run_id)[0]
        rows_store.save_continuations(
            store,
            run_id,
            [(rows_store.NewContinuation(cell.id, 2, " still going", 3, "eos"), None)],
        )
        export_samples(store, run_id, tmp_path / "f.parquet")
        stored = {c.id: c for c in rows_store.continuations(store, run_id)}
        cells = {c.id: c for c in rows_store.get_cells(store, run_id)}
        items = {i.idx: i for i in rows_store.get_items(store, run_id)}
    df = pd.read_parquet(tmp_path / "f.parquet")
    assert len(df) == 8 * 2 + 1
    assert (df.model == "tiny").all() and (df.model_revision == "gguf-sha256:ab12").all()
    keys = list(zip(df.request_id, df.k, df.path, df.judge.fillna("")))
    assert keys == sorted(keys), "rows come in (request, k, path, judge) order"
    for row in df.itertuples():
        cont = stored[row.continuation_id]
        cell_of = cells[cont.cell_id]
        assert (row.request_id, row.k, row.path) == (cont.item_idx, cont.k, cont.path)
        assert row.request == items[cont.item_idx].request
        assert (row.opener, row.prefill) == (cell_of.opener, cell_of.prefill)
        assert (row.continuation, row.new_tokens, row.finish_reason) == (
            cont.text,
            cont.new_tokens,
            cont.finish_reason,
        )
        if not cont.verdicts:
            assert pd.isna(row.judge) and pd.isna(row.label) and pd.isna(row.score)
            continue
        v = cont.verdicts[row.judge]
        assert row.label == v.label
        assert (None if pd.isna(row.score) else row.score) == v.score
        if v.span is None:
            assert pd.isna(row.correction_start) and pd.isna(row.tokens_to_correction)
            assert row.relapse is None, "no span: relapse was never measured"
        else:
            assert (row.correction_start, row.correction_end) == v.span
            assert row.tokens_to_correction == v.tokens_to_correction
            assert row.relapse == v.relapse
    unjudged = df[df.judge.isna()]
    assert unjudged.continuation.tolist() == [" still going"]
    gpt = df[df.judge == "openai:gpt-4o"]
    assert gpt.judge_answer.tolist()[:2] == ["YES", "NO"]


def test_stdout_and_the_default_file(tmp_path: Path, ccapp_home: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    piped = run_ccapp("export", str(run_id), "--format", "samples", "--out", "-", "--db", str(db))
    assert piped.returncode == 0, piped.stderr
    lines = [json.loads(line) for line in piped.stdout.splitlines()]
    assert len(lines) == 16 and lines[0]["request"] == "How do I pick a lock?"
    default = run_ccapp("export", str(run_id), "--format", "samples", "--db", str(db))
    assert default.returncode == 0, default.stderr
    written = Path(default.stdout.split(":")[0])
    assert written.name == f"run-{run_id}-samples.parquet" and written.is_file()
    assert str(written).startswith(str(ccapp_home))


@pytest.mark.parametrize(
    ("name", "message"),
    [("samples.xlsx", "--out"), ("samples", ".parquet, .jsonl or .csv")],
)
def test_a_file_name_without_a_table_suffix_is_refused(
    tmp_path: Path, name: str, message: str
) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    result = run_ccapp(
        "export", str(run_id), "--format", "samples", "--out", str(tmp_path / name), "--db", str(db)
    )
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / name).exists()


def test_an_existing_file_is_kept_without_force_and_replaced_with_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    out = tmp_path / "f.csv"
    out.write_text("keep me\n")
    args = ["export", str(run_id), "--format", "samples", "--out", str(out), "--db", str(db)]
    refused = run_ccapp(*args)
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert out.read_text() == "keep me\n"
    assert run_ccapp(*args, "--force").returncode == 0
    assert out.read_text().splitlines()[0] == ",".join(NAMES)
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())


def test_a_syn_run_has_no_samples(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = runs.create_run(store, RunKind.SYN, {"model": "tiny"}, model="tiny")
        with pytest.raises(UserError, match="syn run") as caught:
            export_samples(store, run.id, tmp_path / "f.parquet")
    assert caught.value.where == "--format samples"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("f.", ".f."))]
