"""Sampling settings: resolved once (option, then the model's generation config, then
transformers' defaults), recorded with the run and the report, applied as `generate` does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ccapp.engines.c2eval.evaluate import EvalConfig, Evaluation
from ccapp.engines.c2eval.report import build_report
from ccapp.engines.generation.sampling import resolve_sampling
from ccapp.engines.generation.types import Sampling
from ccapp.errors import UserError
from ccapp.store import RunStatus, Store, runs
from ccapp.store import evals as rows_store

from helpers import run_ccapp


def resolve(model: dict[str, object], **given: object) -> tuple[Sampling, dict[str, object]]:
    options = {"top_k": None, "repetition_penalty": None} | given
    return resolve_sampling(
        max_new_tokens=32,
        temperature=0.8,
        top_p=0.7,
        top_k=options["top_k"],  # type: ignore[arg-type]
        repetition_penalty=options["repetition_penalty"],  # type: ignore[arg-type]
        model=model,
    )


def test_the_model_generation_config_fills_what_no_option_sets() -> None:
    qwen2 = {"top_k": 20, "repetition_penalty": 1.05, "temperature": 0.7, "top_p": 0.8}
    sampling, record = resolve(qwen2)
    assert sampling == Sampling(32, 0.8, 0.7, top_k=20, repetition_penalty=1.05)
    assert record["source"] == {
        "top_k": "model generation_config",
        "repetition_penalty": "model generation_config",
        "temperature": "option",
        "top_p": "option",
    }
    # The paper's temperature and top-p are ccapp's options: the model's are recorded, unused.
    assert record["overridden_by_options"] == {"temperature": 0.7, "top_p": 0.8}


def test_options_win_and_transformers_defaults_fill_the_rest() -> None:
    sampling, record = resolve({"top_k": 20}, top_k=0, repetition_penalty=1.2)
    assert (sampling.top_k, sampling.repetition_penalty) == (0, 1.2)
    assert record["source"]["top_k"] == "option"  # type: ignore[index]
    sampling, record = resolve({})
    assert (sampling.top_k, sampling.repetition_penalty) == (50, 1.0)  # as `generate` does
    assert record["source"]["top_k"] == "transformers"  # type: ignore[index]


def test_generation_config_settings_ccapp_does_not_apply_are_listed() -> None:
    _, record = resolve({"min_p": 0.05, "typical_p": 1.0, "no_repeat_ngram_size": 3})
    assert record["not_applied"] == {"min_p": 0.05, "no_repeat_ngram_size": 3}


@pytest.fixture
def qwen_like(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model with a Qwen2-style generation_config.json (top_k 20, penalty 1.5)."""
    folder = tmp_path / "qwen-like"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config |= {"top_k": 20, "repetition_penalty": 1.5, "temperature": 0.7, "top_p": 0.8}
    (folder / "generation_config.json").write_text(json.dumps(config))
    return folder


def small(model: Path, data: Path, **extra: object) -> EvalConfig:
    values = dict(
        model=str(model),
        data=str(data),
        ks=(10, 20),
        paths=1,
        limit=2,
        max_new_tokens=10,
        device="cpu",
    )
    return EvalConfig(**(values | extra))  # type: ignore[arg-type]


def test_a_run_records_and_reports_the_settings_it_sampled_with(
    qwen_like: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    with Store.open(tmp_path / "s.db") as store:
        run = Evaluation(store).start(small(qwen_like, c2eval_file, top_k=7))
        report = build_report(store, run.id)
    resolved = run.config["sampling_resolved"]
    assert (resolved["top_k"], resolved["repetition_penalty"]) == (7, 1.5)
    assert resolved["source"]["top_k"] == "option"
    assert resolved["source"]["repetition_penalty"] == "model generation_config"
    assert (resolved["temperature"], resolved["top_p"]) == (0.8, 0.7)
    assert report["sampling"] == resolved


def test_greedy_eval_equals_generate_with_the_models_generation_config(
    qwen_like: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    """`generate` applies generation_config.json's repetition penalty; so does ccapp."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with Store.open(tmp_path / "s.db") as store:
        run = Evaluation(store).start(small(qwen_like, c2eval_file, temperature=0.0))
        cells = {c.id: c for c in rows_store.get_cells(store, run.id)}
        conts = rows_store.continuations(store, run.id)
    model = AutoModelForCausalLM.from_pretrained(qwen_like).eval()
    tokenizer = AutoTokenizer.from_pretrained(qwen_like)
    assert model.generation_config.repetition_penalty == 1.5
    for cont in conts:
        ids = tokenizer(cells[cont.cell_id].rendered_prompt, add_special_tokens=False)["input_ids"]
        out = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False)[0].tolist()
        expected = tokenizer.decode(out, skip_special_tokens=True)[
            len(tokenizer.decode(ids, skip_special_tokens=True)) :
        ]
        assert cont.text == expected


def test_resuming_with_another_top_k_is_refused(
    tiny_model_dir: Path, c2eval_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    with Store.open(db) as store:
        run = runs.create_run(
            store,
            runs.RunKind.EVAL,
            {"model": str(tiny_model_dir), "data": str(c2eval_file), "ks": [10], "top_k": 20},
        )
        runs.set_status(store, run.id, RunStatus.PAUSED)
    result = run_ccapp("eval", "--resume", str(run.id), "--top-k", "5", "--db", str(db))
    assert result.returncode == 2 and "--top-k (run: 20, given: 5)" in result.stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [("top_k", -1), ("repetition_penalty", 0.0), ("repetition_penalty", float("nan"))],
)
def test_impossible_sampling_options_are_refused(option: str, value: float) -> None:
    with pytest.raises(UserError) as info:
        EvalConfig("tiny", "c2-eval", **{option: value}).check()  # type: ignore[arg-type]
    assert info.value.where == "--" + option.replace("_", "-")
