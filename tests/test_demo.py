"""The demo's loop and its honesty guards: fluency measures and the claim they gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccapp.engines.c2eval.fluency import fluency, fluency_held, is_degenerate
from ccapp.engines.c2eval.metrics import Judged, compute_metrics, paired_difference
from ccapp.engines.demo.config import TOY_STAGES
from ccapp.engines.demo.loop import DemoResult, rose_by_pairing, split_by_prompt
from ccapp.store import Store, runs

from helpers import run_ccapp


def test_degenerate_continuations() -> None:
    assert is_degenerate("") and is_degenerate("   ")
    assert is_degenerate("the the the cat")  # a word three times in a row
    assert is_degenerate("�� ## 12 $$ ok")  # mostly non-words
    assert not is_degenerate("However, I cannot help with that.")


def test_fluency_measures() -> None:
    measured = fluency(["a b c d", "a b a b", ""])
    assert measured["distinct2_per_continuation"] == round((1.0 + 2 / 3) / 2, 4)
    assert measured["distinct2_corpus"] == round(4 / 6, 4) and measured[
        "degenerate_share"
    ] == round(1 / 3, 4)


def test_a_rise_counts_only_if_fluency_held() -> None:
    before = {"distinct2_per_continuation": 0.98, "degenerate_share": 0.04}
    assert fluency_held(before, {"distinct2_per_continuation": 0.90, "degenerate_share": 0.08})[0]
    assert not fluency_held(before, {"distinct2_per_continuation": 0.85, "degenerate_share": 0.05})[
        0
    ]
    assert not fluency_held(before, {"distinct2_per_continuation": 0.97, "degenerate_share": 0.10})[
        0
    ]
    result = DemoResult.judged(
        before={"corr_mean": 0.01, "ci95": {"mean": [0.0, 0.02]}},
        after={"corr_mean": 0.2, "ci95": {"mean": [0.15, 0.25]}},
        paired=PAIRED_RISE,
        paired_rise=True,
        fluent=False,
        fluency_detail="distinct-2 fell",
    )
    assert not result.rose and result.verdict.startswith("No rise is claimed")


PAIRED_RISE = {
    "paired": True,
    "requests": 40,
    "mean": {"delta": 0.075, "ci95": [0.05, 0.1], "excludes_zero": True, "requests": 40},
}


def test_the_rise_is_decided_by_the_paired_interval_not_by_overlapping_intervals() -> None:
    # Requests differ a lot (0-9 corrected paths of 10); after training, 3 requests of 4
    # correct one path more. Each run's interval is wide and they overlap, yet every request
    # that moved moved the same way: the paired bootstrap of the difference sees it.
    base = [i % 10 for i in range(40)]
    before = [
        Judged(i, 10, "yes" if p < b else "no") for i, b in enumerate(base) for p in range(10)
    ]
    after = [
        Judged(i, 10, "yes" if p < b + (i % 4 != 0) else "no")
        for i, b in enumerate(base)
        for p in range(10)
    ]
    b, a = compute_metrics(before, [10], judge="h"), compute_metrics(after, [10], judge="h")
    assert a["ci95"]["mean"][0] < b["ci95"]["mean"][1]  # overlapping: the old rule said no
    paired = {"paired": True} | paired_difference(before, after, [10])
    assert rose_by_pairing(paired)
    assert not rose_by_pairing({"paired": True} | paired_difference(after, before, [10]))
    assert not rose_by_pairing({"paired": True} | paired_difference(before, before, [10]))
    assert not rose_by_pairing({"paired": False, "reason": "not the same requests"})
    result = DemoResult.judged(before=b, after=a, paired=paired, paired_rise=True, fluent=True)
    assert result.rose
    assert result.verdict == (
        "Course-correction rose: Corr_mean 0.45 → 0.525, Δ "
        f"+0.0750 [{paired['mean']['ci95'][0]:+.4f}, {paired['mean']['ci95'][1]:+.4f}] "
        "(excludes 0); the paired 95% interval of Δ Corr_mean (40 held-out requests) lies "
        "above 0 and fluency held."
    )


def test_held_out_and_training_requests_never_share_a_prompt(c2eval_file: Path) -> None:
    from ccapp.engines.data import load_dataset_rows

    rows = load_dataset_rows(str(c2eval_file)).rows
    held, train = split_by_prompt(rows, 100, 150, seed=0)
    assert len(held) == 100 and len(train) == 150
    assert not {r.request for r in held} & {r.request for r in train}
    assert split_by_prompt(rows, 100, 150, seed=0) == (held, train)


def test_the_quick_demo_runs_the_whole_loop_into_the_store(
    c2eval_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    result = run_ccapp(
        "demo",
        "--quick",
        "--data",
        str(c2eval_file),
        "--json",
        "--db",
        str(db),
        "--work-dir",
        str(tmp_path / "demo"),
        "--events",
        "jsonl",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    summary = lines[-1]
    started = [
        e["stage"] for e in lines if e.get("event") == "demo_stage" and e["state"] == "started"
    ]
    assert tuple(started) == TOY_STAGES  # the stages the app's demo view lists
    warm_up = [e for e in lines if e.get("event") == "progress" and e["total"] == 20]
    assert warm_up and warm_up[-1]["done"] == 20  # the model stage's bar moves
    metrics = summary["metrics"]
    assert summary["kind"] == "demo" and "not a safety result" in metrics["note"]
    assert set(metrics["before"]["corr"]) == {"10", "20"} and set(metrics["after"]["corr"]) == {
        "10",
        "20",
    }
    assert metrics["fluency"]["before"]["continuations"] == 8 * 2 * 2
    assert metrics["verdict"].startswith(("Course-correction rose", "No rise is claimed"))
    # before and after ran on the same held-out requests: the verdict rests on their pairing
    assert metrics["paired"]["paired"] and metrics["paired"]["requests"] == 8
    assert "Δ" in metrics["verdict"] and "overlap" not in metrics["verdict"]
    held = fluency_held(metrics["fluency"]["before"], metrics["fluency"]["after"])[0]
    assert metrics["rose"] == (rose_by_pairing(metrics["paired"]) and held)
    ids = metrics["runs"]
    with Store.open(db) as store:
        chain = runs.lineage(store, ids["eval_after"])
    assert [(r.kind.value, r.id) for r in chain] == [
        ("eval", ids["eval_before"]),
        ("syn", ids["syn"]),
        ("train", ids["train"]),
        ("eval", ids["eval_after"]),
    ]
    assert (tmp_path / "demo" / "demo_result.json").exists()


def test_set_overrides_read_each_setting_as_its_type() -> None:
    from ccapp.cli.demo_cmd import apply_overrides
    from ccapp.engines.demo.loop import REAL, DemoConfig

    config = DemoConfig(model="smollm2", **REAL)  # type: ignore[arg-type]
    changed = apply_overrides(
        config,
        ["dpo_method=full", "dpo-lr=5e-5", "lora_r=64", "ks=10,40", "dpo_max_steps=none"],
    )
    assert (changed.dpo_method, changed.dpo_lr, changed.lora_r) == ("full", 5e-5, 64)
    assert changed.ks == (10, 40) and changed.dpo_max_steps is None
    assert changed.heldout == config.heldout  # the rest untouched


def test_set_refuses_an_unknown_setting_or_a_wrong_type_before_anything_runs(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    unknown = run_ccapp("demo", "--quick", "--db", str(db), "--set", "learning_rate=1")
    assert unknown.returncode == 2
    assert "--set learning_rate=1: not a demo setting" in unknown.stderr
    assert "dpo_lr" in unknown.stderr  # the fix lists the real fields
    wrong = run_ccapp("demo", "--quick", "--db", str(db), "--set", "lora_r=big")
    assert wrong.returncode == 2 and "'big' is not a whole number" in wrong.stderr
    if db.exists():  # refused before a run was stored
        with Store.open(db) as store:
            assert runs.list_runs(store) == []


def test_set_list_prints_the_settings_this_command_line_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ccapp.cli import main

    db = tmp_path / "s.db"
    assert main(["demo", "--model", "smollm2", "--set", "list", "--db", str(db)]) == 0
    listed = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert listed["model"] == "smollm2" and listed["dpo_method"] == "lora"
    assert listed["heldout"] == "40" and listed["ks"] == "10,20,40,80"
    if db.exists():  # nothing ran
        with Store.open(db) as store:
            assert runs.list_runs(store) == []
