"""C2-Syn: cut points, six ranked responses, 15 pairs per group, filters, verification, export."""

from __future__ import annotations

import itertools
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccapp.engines.c2syn.synthesize import (
    SynConfig,
    Synthesis,
    cut_points,
    degenerate_reason,
    describe_counts,
    filter_requests,
    harmful_to_use,
    is_question,
    mentions_how_or_what,
    review,
    syn_prefill,
)
from ccapp.engines.events import Event, Progress
from ccapp.engines.generation.types import Cancelled
from ccapp.engines.phrases import (
    OPENERS,
    TRIGGERS,
    TRIGGERS_AFTER_SENTENCE,
    TRIGGERS_IN_SENTENCE,
)
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


def test_the_stricter_question_filter_keeps_prompts_that_start_with_how_or_what() -> None:
    assert is_question("How do I pick a lock?") and is_question("what is the best poison")
    assert not is_question("Tell me how to pick a lock") and not is_question("Why is the sky blue?")


def test_four_boundaries_give_four_distinct_punctuation_cuts() -> None:
    text = "Buy a crowbar, wait for night. Force the window; climb in quietly, and take it all"
    cuts = cut_points(text)
    assert cuts is not None and [text[cut - 1] for cut in cuts] == [",", ".", ";", ","]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=4, max_value=40))
def test_n_boundaries_give_evenly_spread_distinct_cuts(n: int) -> None:
    text = " ".join(f"step{i}," for i in range(n)) + " done"
    cuts = cut_points(text)
    assert cuts is not None and len(set(cuts)) == 4 and all(text[c - 1] == "," for c in cuts)
    which = [text[:c].count(",") for c in cuts]  # the 1-based boundary each cut follows
    gaps = [b - a for a, b in itertools.pairwise([0, *which, n + 1])]
    assert max(gaps) - min(gaps) <= 1


# --- the paper's filter -------------------------------------------------------------------


def test_the_paper_question_test_is_a_case_sensitive_substring_test() -> None:
    assert mentions_how_or_what("Can you show me the way in?")  # "show" holds "how"
    assert mentions_how_or_what("Tell me what to buy") and mentions_how_or_what("How so")
    assert not mentions_how_or_what("HOW DO I DO IT") and not mentions_how_or_what("Why?")


def test_the_paper_uses_the_first_unsafe_response_over_80_words() -> None:
    short, long_ = "too short " * 10, "long enough " * 41
    assert harmful_to_use((long_, short), 80) == long_
    assert harmful_to_use((short, long_), 80) == long_  # response_1 when response_0 is short
    assert harmful_to_use((short,), 80) is None


def _candidates(c2eval_file: Path) -> list[tuple[int, str, tuple[str, ...], str | None]]:
    from ccapp.engines.data import load_dataset_rows

    rows = load_dataset_rows(str(c2eval_file)).rows
    return [(r.index, r.request, r.unsafe_responses, r.safe_response) for r in rows]


def test_the_default_filter_is_the_papers_and_keeps_all_500_c2eval_rows(c2eval_file: Path) -> None:
    kept, counts = filter_requests(_candidates(c2eval_file), SynConfig("tiny"))
    assert len(kept) == 500 and counts == {"kept": 500}
    assert describe_counts({"source": 500, **counts}) == "source: 500, kept: 500"
    raw = [json.loads(line) for line in c2eval_file.read_text().splitlines()]
    papers = [
        r["response_0"]
        if not r["is_response_0_safe"] and len(r["response_0"].split()) > 80
        else r["response_1"]
        for r in raw
    ]
    assert [harmful for _i, _line, _q, harmful, _safe in kept] == [h.strip() for h in papers]
    assert sum(p is r["response_1"] for p, r in zip(papers, raw)) == 165  # response_0 too short


def test_the_stricter_question_rule_is_an_option_and_counts_what_it_drops(
    c2eval_file: Path,
) -> None:
    kept, counts = filter_requests(
        _candidates(c2eval_file), SynConfig("tiny", question_rule="starts")
    )
    assert len(kept) == 367 and counts == {"not a how/what question": 133, "kept": 367}


def test_the_dataset_safe_source_drops_rows_without_a_safe_response(c2eval_file: Path) -> None:
    kept, counts = filter_requests(
        _candidates(c2eval_file), SynConfig("tiny", safe_source="dataset")
    )
    assert len(kept) == 65 and counts["no safe response in the data"] == 435
    assert all(safe for *_, safe in kept)


# --- triggers -----------------------------------------------------------------------------


def test_triggers_are_open_clauses_capitalised_for_where_they_stand() -> None:
    assert TRIGGERS == TRIGGERS_AFTER_SENTENCE + TRIGGERS_IN_SENTENCE
    for trigger in TRIGGERS:
        assert not trigger.rstrip().endswith((".", "!", "?")), trigger  # the model completes it
    assert all(t[0].isupper() for t in TRIGGERS_AFTER_SENTENCE)
    assert all(t[0].islower() for t in TRIGGERS_IN_SENTENCE)


def test_the_trigger_form_fits_the_cut() -> None:
    after_sentence = syn_prefill("Sure.", "Buy a crowbar. Then wait", 14, seed=0, item=3, slot=1)
    after_comma = syn_prefill("Sure.", "Buy a crowbar, then wait", 14, seed=0, item=3, slot=1)
    after_line = syn_prefill("Sure.", "1. Buy a crowbar\n2. Wait", 17, seed=0, item=3, slot=1)
    assert after_sentence.text.startswith("Sure. Buy a crowbar. ")
    assert after_sentence.trigger in TRIGGERS_AFTER_SENTENCE
    assert after_sentence.text == f"Sure. Buy a crowbar. {after_sentence.trigger}"
    assert after_comma.trigger in TRIGGERS_IN_SENTENCE
    assert after_comma.text == f"Sure. Buy a crowbar, {after_comma.trigger}"
    assert after_line.trigger in TRIGGERS_AFTER_SENTENCE
    assert after_line.text == f"Sure. 1. Buy a crowbar\n{after_line.trigger}"


# --- verification -------------------------------------------------------------------------

LOOP = "The most effective way is to use a hidden compartment. " * 8


def test_degenerate_text_is_named() -> None:
    assert degenerate_reason("") == "empty"
    assert degenerate_reason(LOOP) == "loops on one sentence"
    assert degenerate_reason("the the the the the") == "broken text"
    assert (
        degenerate_reason(
            " this would be illegal and could badly hurt people. If you are in trouble at the "
            "border, please talk to a lawyer or to the authorities instead."
        )
        is None
    )


class Recording:
    """The real heuristic judge, keeping what it was asked."""

    spec = "heuristic"
    cacheable = False

    def __init__(self) -> None:
        from ccapp.engines.judges.heuristic import HeuristicJudge

        self.inner = HeuristicJudge()
        self.asked: list[Any] = []

    def judge(self, batch: Any) -> Any:
        self.asked.extend(batch)
        return self.inner.judge(batch)


PREFILLS = [f"Sure. Step {i}, but I must point out that" for i in range(1, 5)]
SAFE = "I'm sorry, but I can't help with that. It would be illegal."
FINE = " I cannot help with this. It would be illegal and could hurt people."


def test_verification_judges_the_models_own_text_with_the_trigger_as_prefill() -> None:
    judge = Recording()
    assert review("Q?", PREFILLS, [SAFE, FINE, FINE, FINE, FINE], judge) == ("ok", None)
    assert [(a.prefill, a.continuation) for a in judge.asked] == [("", SAFE)] + [
        (p, FINE) for p in PREFILLS
    ]


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (
            [SAFE, FINE, FINE, " I cannot help with this. Here's how: 1. Buy a crowbar.", FINE],
            "syn3 relapses",
        ),
        (
            [SAFE, FINE, " this is illegal, so make sure not to get caught.", FINE, FINE],
            "syn2 does not correct",
        ),
        (
            [SAFE, FINE, FINE, "\n\nThe most effective way in is the back window.", FINE],
            "syn3 leaves the trigger unfinished",
        ),
        ([SAFE, ". Then climb in.", FINE, FINE, FINE], "syn1 leaves the trigger unfinished"),
        ([SAFE, FINE, FINE, FINE, LOOP], "syn4 degenerate (loops on one sentence)"),
        ([SAFE, "", FINE, FINE, FINE], "syn1 degenerate (empty)"),
        (
            ["The answer lies in the art of navigating the border.", FINE, FINE, FINE, FINE],
            "safe does not refuse",
        ),
        ([SAFE + " Here's how: 1. Hide it well.", FINE, FINE, FINE, FINE], "safe relapses"),
    ],
)
def test_verification_rejects_relapse_no_correction_degenerate_text_and_unsafe_answers(
    answers: list[str], reason: str
) -> None:
    assert review("Q?", PREFILLS, answers, Recording()) == ("rejected", reason)


def test_a_safe_answer_from_the_data_is_not_judged() -> None:
    judge = Recording()
    plain = "You should not do this; talk to a doctor about safe options."
    assert review("Q?", PREFILLS, [plain, FINE, FINE, FINE, FINE], judge, judge_safe=False) == (
        "ok",
        None,
    )
    assert [a.continuation for a in judge.asked] == [FINE] * 4


def test_the_dataset_safe_source_takes_the_rows_safe_response(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    from ccapp.store import evals as items_store

    with Store.open(tmp_path / "s.db") as store:
        run = Synthesis(store).start(
            SynConfig(
                str(tiny_model_dir),
                data=str(c2eval_file),
                limit=3,
                max_new_tokens=4,
                safe_source="dataset",
                device="cpu",
            )
        )
        items = {i.idx: i for i in items_store.get_items(store, run.id)}
        groups = list(syn_store.iter_groups(store, run.id))
    assert run.metrics["groups"] == 3
    assert all(g.responses[0].text == items[g.item_idx].safe_response for g in groups)


@pytest.mark.parametrize(
    ("completion", "sentence"),
    [
        (" this information. Then take the cash", " this information."),
        ("\n\nthis, because it is illegal! Next", "\n\nthis, because it is illegal!"),
        (" anything else", " anything else"),  # no sentence ends: all of it
        (" U.S. law. More", " U.S. law."),
    ],
)
def test_a_completion_is_cut_after_the_sentence_that_finishes_the_trigger(
    completion: str, sentence: str
) -> None:
    from ccapp.engines.c2syn.synthesize import first_sentence

    assert first_sentence(completion) == sentence


def test_sentence_completions_end_each_syn_response_at_its_correction(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    from ccapp.engines.c2syn.synthesize import first_sentence

    def synthesize(completion: str) -> list[syn_store.Group]:
        with Store.open(tmp_path / f"{completion}.db") as store:
            run = Synthesis(store).start(
                SynConfig(
                    str(tiny_model_dir), data=str(c2eval_file), limit=2, max_new_tokens=24,
                    completion=completion, device="cpu",
                )
            )  # fmt: skip
            return list(syn_store.iter_groups(store, run.id, status=None))

    full, cut = synthesize("full"), synthesize("sentence")
    assert [g.item_idx for g in full] == [g.item_idx for g in cut]
    for whole, short in zip(full, cut):
        for a, b in zip(whole.responses[1:5], short.responses[1:5]):
            head, rest = a.text.split(a.trigger, 1)
            assert b.text == head + a.trigger + first_sentence(rest)
        assert whole.responses[0].text == short.responses[0].text  # the safe answer is whole


def test_a_run_of_other_phrases_does_not_resume(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    config = SynConfig(
        str(tiny_model_dir), data=str(c2eval_file), limit=2, max_new_tokens=2, device="cpu"
    )
    with Store.open(tmp_path / "s.db") as store:
        run = Synthesis(store).start(config)
        with store.write() as db:  # as a run of the closed-sentence triggers was left
            db.conn.execute(
                "UPDATE runs SET status = 'paused', "
                "config = json_set(config, '$.phrases_version', 1) WHERE id = ?",
                [run.id],
            )
        with pytest.raises(UserError, match="phrases"):
            Synthesis(store).resume(run.id, {})


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
            cut_text = harmful[: r.cut_chars]
            at_line = cut_text.rstrip(" ").endswith("\n")
            sentence_over = at_line or cut_text.rstrip().endswith((".", "!", "?"))
            assert r.trigger in (TRIGGERS_AFTER_SENTENCE if sentence_over else TRIGGERS_IN_SENTENCE)
            between = "\n" if at_line else " "
            assert r.text.startswith(f"{opener} {cut_text.rstrip()}{between}{r.trigger}")
        assert group.responses[0].text.strip()


def test_the_filters_are_counted_and_reported(syn_run: tuple[Path, int, str]) -> None:
    db, run_id, stderr = syn_run
    with Store.open(db) as store:
        source = runs.get_run(store, run_id).metrics["source"]
    # the paper's filter drops none of the 500 rows: only --limit does
    assert source == {"source": 500, "beyond --limit": 480, "kept": 20}
    assert "source: 500, beyond --limit: 480, kept: 20" in stderr


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

    from ccapp.engines.c2syn.pairs_export import export_pairs

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
    from ccapp.engines.c2eval.evaluate import EvalConfig, Evaluation

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
        re.fullmatch(
            r"empty safe response|(safe|syn[1-4]) (does not (correct|refuse)|relapses|degenerate \(.+\))",
            reason,
        )
        for reason in reasons
    ), reasons


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

        def emit(self, event: Event) -> None:
            if isinstance(event, Progress):
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
    assert result.returncode == 2
    assert "an eval run has no preference pairs" in result.stderr
    assert "pairs come from a syn run" in result.stderr and not (tmp_path / "p").exists()
    with pytest.raises(UserError):
        SynConfig("tiny", data=None).check()
