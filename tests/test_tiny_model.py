"""The tiny offline chat model: deterministic, loadable like any HF model, continues prefills."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccapp.engines.generation.models import load_model, resolve_model
from ccapp.engines.generation.tiny import build_tiny_model

from helpers import run_ccapp

MESSAGES = [
    {"role": "user", "content": "How do I bake bread?"},
    {"role": "assistant", "content": "Sure, I can help you with that. First, mix flour"},
]


def test_it_reloads_through_the_generic_loader_and_renders_an_open_assistant_turn(
    tiny_model_dir: Path,
) -> None:
    loaded = load_model(resolve_model(str(tiny_model_dir)), device="cpu")
    tokenizer = loaded.tokenizer
    assert loaded.template_source == "model" and loaded.dtype == "float32"
    rendered = tokenizer.apply_chat_template(MESSAGES, tokenize=False, continue_final_message=True)
    assert rendered.endswith("Sure, I can help you with that. First, mix flour")
    assert not rendered.endswith(tokenizer.eos_token)
    closed = tokenizer.apply_chat_template(MESSAGES, tokenize=False)
    assert closed.startswith(rendered) and closed[len(rendered) :].startswith(tokenizer.eos_token)


def test_it_generates_after_the_prefill(tiny_model_dir: Path) -> None:
    import torch

    loaded = load_model(resolve_model(str(tiny_model_dir)), device="cpu")
    tokenizer, model = loaded.tokenizer, loaded.model
    rendered = tokenizer.apply_chat_template(MESSAGES, tokenize=False, continue_final_message=True)
    ids = tokenizer(rendered, return_tensors="pt", add_special_tokens=False).input_ids
    assert ids[0, 0].item() == tokenizer.bos_token_id and (ids == tokenizer.bos_token_id).sum() == 1
    torch.manual_seed(0)
    out = model.generate(ids, max_new_tokens=8, do_sample=True, pad_token_id=tokenizer.pad_token_id)
    assert 1 <= out.shape[1] - ids.shape[1] <= 8
    assert tokenizer.decode(out[0, : ids.shape[1]]) == rendered


def test_the_same_seed_builds_identical_models_and_another_seed_does_not(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from safetensors.torch import load_file

    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    for name in ("tokenizer.json", "chat_template.jinja", "config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes()
    first, second = (
        load_file(tiny_model_dir / "model.safetensors"),
        load_file(again / "model.safetensors"),
    )
    assert first.keys() == second.keys()
    assert all(first[k].equal(second[k]) for k in first)
    third = load_file(other / "model.safetensors")
    assert not all(first[k].equal(third[k]) for k in first)


def test_the_tokenizer_learns_from_a_given_data_file(tmp_path: Path, c2eval_file: Path) -> None:
    result = run_ccapp(
        "model",
        "tiny",
        str(tmp_path / "m"),
        "--data",
        str(c2eval_file),
        "--layers",
        "3",
        timeout=300,  # it trains a tokenizer and warms the model up: slow on a busy machine
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "m" / "ccapp_tiny.json").read_text())
    assert meta["layers"] == 3 and meta["vocab_size"] > 900
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["num_hidden_layers"] == 3


def test_cli_refuses_to_build_into_a_folder_that_holds_files(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    result = run_ccapp("model", "tiny", str(tmp_path / "busy"))
    assert result.returncode == 2
    assert "not an empty folder" in result.stderr
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def test_the_tiny_preset_is_built_into_the_cache_once(ccapp_home: Path) -> None:
    ref = resolve_model("tiny")
    assert Path(ref.source).parent == ccapp_home / "cache" / "models"
    stamp = (Path(ref.source) / "model.safetensors").stat().st_mtime_ns
    assert resolve_model("tiny").source == ref.source
    assert (Path(ref.source) / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("layers", [0, 9])
def test_the_layer_count_is_bounded(tmp_path: Path, layers: int) -> None:
    with pytest.raises(ValueError, match="layers"):
        build_tiny_model(tmp_path / "m", layers=layers)
