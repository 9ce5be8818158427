"""C2-Syn: cut points, six ranked responses, 15 pairs per group, filters, verification, export."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccapp.engines.hf_generate import Cancelled
from ccapp.engines.phrases import OPENERS, TRIGGERS
from ccapp.engines.synthesize import SynConfig, Synthesis, cut_points, is_question
from ccapp.errors import UserError
from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store import syn as syn_store

from helpers import run_ccapp

HARMFUL = (
    "First, buy a crowbar. Then wait until night, when the street is empty; "
    "force the window open: climb in quietly! Take what you want, and leave."
)


# --- cut points ---------------------------------------------------------------------------


def test_cuts_fall_after_evenly_spaced_punctuation() -> None:
    cuts = cut_points(HARMFUL)
    assert cuts is not None and len(cuts) == 4 and cuts == sorted(set(cuts))
    assert all(HARMFUL[cut - 1] in ".,;:!?" for cut in cuts)
    assert cuts[0] > 0 and cuts[-1] < len(HARMFUL)


def test_without_enough_punctuation_cuts_fall_after_evenly_spaced_words() -> None:
    text = "one two three four five six seven eight nine ten"
    cuts = cut_points(text)
    assert cuts is not None and [text[:c].split()[-1] for c in cuts] == [
        "two",
        "four",
        "six",
        "eight",
    ]
    assert cut_points("far too short here") is None


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from(list("abc .,;!?\n")), min_size=0, max_size=200))
def test_cuts_are_strictly_increasing_never_empty_never_whole(text: str) -> None:
    cuts = cut_points(text)
    if len(text.split()) <= 4:
        assert cuts is None
        return
    assert cuts is not None and len(cuts) == 4
    assert all(a < b for a, b in itertools.pairwise(cuts))
    stripped = text.rstrip()
    assert all(text[:c].strip() and c < len(stripped) for c in cuts)


def test_the_question_filter_keeps_how_and_what() -> None:
    assert is_question("How do I pick a lock?") and is_question("what is the best poison")
    assert not is_question("Tell me how to pick a lock") and not is_question("Why is the sky blue?")


# --- a run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def syn_run(tmp_path_factory: pytest.TempPathFactory, c2eval_file: Path) -> tuple[Path, int, str]:
    """The issue's acceptance command, as is: `ccapp syn --model tiny --data … --limit 20`."""
    home = tmp_path_factory.mktemp("syn-home")
    db = home / "s.db"
    result = run_ccapp(
        "syn",
        "--model",
        "tiny",
        "--data",
        str(c2eval_file),
        "--limit",
        "20",
        "--json",
        "--db",
        str(db),
        env={"CCAPP_HOME": str(home), "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return db, json.loads(result.stdout.splitlines()[-1])["run_id"], result.stderr


def test_acceptance_20_groups_300_pairs(syn_run: tuple[Path, int, str]) -> None:
    db, run_id, _ = syn_run
    with Store.open(db) as store:
        run = runs.get_run(store, run_id)
        assert run.kind is RunKind.SYN and run.status is RunStatus.DONE
        assert (
            run.metrics["groups"] == 20
            and run.metrics["pairs"] == 300
            and run.metrics["rejected"] == 0
        )
        pairs = store.rows(
            "SELECT chosen_rank, rejected_rank FROM preference_pairs WHERE run_id = ?", [run_id]
        )
    assert len(pairs) == 300 and all(p["chosen_rank"] < p["rejected_rank"] for p in pairs)


def test_each_group_holds_the_six_responses_in_order(syn_run: tuple[Path, int, str]) -> None:
    db, run_id, _ = syn_run
    with Store.open(db) as store:
        groups = list(syn_store.iter_groups(store, run_id))
        items = {
            i.idx: i
            for i in __import__("ccapp.store.evals", fromlist=["x"]).get_items(store, run_id)
        }
    assert len(groups) == 20
    for group in groups:
        roles = [r.role for r in group.responses]
        assert roles == ["safe", "syn1", "syn2", "syn3", "syn4", "harmful"]
        harmful = items[group.item_idx].harmful_response
        opener = next(o for o in OPENERS if group.responses[5].text.startswith(o))
        assert group.responses[5].text == f"{opener} {harmful}"
        cuts = [r.cut_chars for r in group.responses[1:5]]
        assert cuts == sorted(set(cuts)) and all(0 < c < len(harmful) for c in cuts)  # type: ignore[operator]
        for r in group.responses[1:5]:
            assert r.trigger in TRIGGERS
            assert r.text.startswith(f"{opener} {harmful[: r.cut_chars].rstrip()} {r.trigger}")
        assert group.responses[0].text.strip()


def test_the_filters_are_counted_and_reported(syn_run: tuple[Path, int, str]) -> None:
    db, run_id, stderr = syn_run
    with Store.open(db) as store:
        source = runs.get_run(store, run_id).metrics["source"]
    assert source["source"] == 500 and source["kept"] == 20
    assert (
        source["not a how/what question"] > 0
        and source["harmful response of 80 words or fewer"] > 0
    )
    assert (
        source["source"]
        == sum(n for name, n in source.items() if name not in ("source", "kept")) + 20
    )
    assert "not a how/what question" in stderr


def test_the_pairs_export_loads_with_datasets_and_passes_trls_checks(
    syn_run: tuple[Path, int, str], tmp_path: Path, tiny_model_dir: Path
) -> None:
    import datasets
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    db, run_id, _ = syn_run
    out = tmp_path / "pairs"
    result = run_ccapp(
        "export", str(run_id), "--format", "pairs", "--out", str(out), "--db", str(db)
    )
    assert result.returncode == 0, result.stderr
    dataset = datasets.load_dataset(str(out), split="train")
    assert dataset.num_rows == 300 and set(dataset.column_names) == {"prompt", "chosen", "rejected"}
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    example = dataset[0]
    assert is_conversational(example)
    rendered = maybe_apply_chat_template(example, tokenizer)
    assert set(rendered) == {"prompt", "chosen", "rejected"} and rendered["prompt"].endswith(
        "<|assistant|>\n"
    )
    meta = json.loads((out / "ccapp_pairs.json").read_text())
    assert meta["pairs"] == 300 and meta["groups"] == 20
    again = run_ccapp(
        "export", str(run_id), "--format", "pairs", "--out", str(out), "--db", str(db)
    )
    assert again.returncode == 2 and "--force" in again.stderr
    jsonl = run_ccapp(
        "export",
        str(run_id),
        "--format",
        "pairs",
        "--jsonl",
        "--out",
        str(tmp_path / "j"),
        "--db",
        str(db),
    )
    assert jsonl.returncode == 0
    assert len((tmp_path / "j" / "train.jsonl").read_text().splitlines()) == 300


def test_export_streams_in_shards(syn_run: tuple[Path, int, str], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from ccapp.engines.pairs_export import export_pairs

    db, run_id, _ = syn_run
    with Store.open(db) as store:
        meta = export_pairs(store, run_id, tmp_path / "shards", shard_rows=70)
    assert meta["files"] == [f"train-{i:05d}.parquet" for i in range(5)]
    assert (
        sum(pq.ParquetFile(tmp_path / "shards" / name).metadata.num_rows for name in meta["files"])
        == 300
    )


def test_from_run_takes_the_requests_an_eval_failed_on(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    from ccapp.engines.evaluate import EvalConfig, Evaluation

    with Store.open(tmp_path / "s.db") as store:
        evaluation = Evaluation(store).start(
            EvalConfig(
                str(tiny_model_dir),
                str(c2eval_file),
                ks=(10,),
                paths=2,
                limit=12,
                max_new_tokens=4,
                device="cpu",
            )
        )
        syn = Synthesis(store).start(
            SynConfig(
                str(tiny_model_dir),
                data=None,
                from_run=evaluation.id,
                questions_only=False,
                min_harmful_words=0,
                max_new_tokens=8,
                device="cpu",
            )
        )
        assert syn.parent_id == evaluation.id and syn.status is RunStatus.DONE
        assert syn.metrics["source"]["source"] > 0
        assert syn.metrics["groups"] + syn.metrics["rejected"] == syn.metrics["source"]["kept"]


def test_verification_keeps_failing_groups_out_and_says_why(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = Synthesis(store).start(
            SynConfig(
                str(tiny_model_dir),
                data=str(c2eval_file),
                limit=6,
                max_new_tokens=16,
                verify_judge="heuristic",
                device="cpu",
            )
        )
        kept = syn_store.counts(store, run.id)
        reasons = syn_store.rejection_reasons(store, run.id)
    assert kept["ok"] + kept["rejected"] == 6
    assert run.metrics["pairs"] == 15 * kept["ok"]
    assert sum(reasons.values()) == kept["rejected"]
    assert all(
        reason.endswith(("does not correct", "does not refuse", "empty safe response"))
        for reason in reasons
    )


def test_a_cancelled_run_resumes_group_by_group(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    config = SynConfig(
        str(tiny_model_dir),
        data=str(c2eval_file),
        limit=6,
        max_new_tokens=8,
        batch_size=10,
        device="cpu",
    )
    with Store.open(tmp_path / "whole.db") as store:
        whole = Synthesis(store).start(config)
        expected = [[r.text for r in g.responses] for g in syn_store.iter_groups(store, whole.id)]

    class StopAfterFirstBatch:
        wants_tokens = False

        def __init__(self) -> None:
            self.cancel = threading.Event()

        def emit(self, event: str, **fields: Any) -> None:
            if event == "progress":
                self.cancel.set()

        def tokens(self, deltas: Any) -> None:
            pass

        def close(self) -> None:
            pass

    sink = StopAfterFirstBatch()
    with Store.open(tmp_path / "split.db") as store:
        synthesis = Synthesis(store, sink, sink.cancel)
        with pytest.raises(Cancelled):
            synthesis.start(config)
        assert synthesis.run is not None
        assert syn_store.counts(store, synthesis.run.id)["ok"] == 2
        done = Synthesis(store).resume(synthesis.run.id, {})
        got = [[r.text for r in g.responses] for g in syn_store.iter_groups(store, done.id)]
    assert done.status is RunStatus.DONE and got == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit"),
        (["--min-harmful-words", "100000"], "no request is left"),
        (["--from-run", "99", "--data", "x.jsonl"], "not both"),
        (["--verify-judge", "oracle"], "unknown judge"),
    ],
)
def test_bad_syn_input_is_exit_2(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    argv = ["syn", "--model", str(tiny_model_dir), "--db", str(tmp_path / "s.db")]
    if "--data" not in args and "--from-run" not in args:
        argv += ["--data", str(c2eval_file)]
    result = run_ccapp(*argv, *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_only_syn_runs_export_pairs(tmp_path: Path) -> None:
    from helpers import build_fixed_store

    db = tmp_path / "s.db"
    run_id = build_fixed_store(db)
    result = run_ccapp(
        "export", str(run_id), "--format", "pairs", "--out", str(tmp_path / "p"), "--db", str(db)
    )
    assert result.returncode == 2 and "only syn runs have pairs" in result.stderr
    with pytest.raises(UserError):
        SynConfig("tiny", data=None).check()
