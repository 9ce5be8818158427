"""Resolving and loading models: presets, folders, adapters, devices, dtypes, templates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ccapp.engines.generation.models import (
    PLAIN_TEMPLATE,
    check_device,
    load_model,
    load_tokenizer,
    parse_device,
    parse_dtype,
    resolve_dtype,
    resolve_model,
)
from ccapp.engines.generation.presets import PRESETS
from ccapp.errors import UserError

PAPER_MODELS = {
    "llama2",
    "vicuna",
    "zephyr",
    "llama3",
    "glm",
    "qwen_05",
    "qwen_15",
    "qwen_7",
    "qwen_72",
    "phi",
}


def test_the_ten_paper_models_are_presets_with_hub_ids() -> None:
    assert PAPER_MODELS | {"tiny", "smollm2"} == set(PRESETS)
    for name in PAPER_MODELS:
        ref = resolve_model(name)
        assert ref.source == PRESETS[name].hf_id and "/" in ref.source and not ref.is_local


def test_a_hub_id_resolves_to_itself_and_knows_its_preset() -> None:
    ref = resolve_model("Qwen/Qwen2-7B-Instruct")
    assert ref.source == "Qwen/Qwen2-7B-Instruct" and ref.preset is PRESETS["qwen_7"]
    assert resolve_model("someone/their-model").preset is None


@pytest.mark.parametrize("spec", ["gpt5", "not a model", "./missing-folder"])
def test_an_unknown_model_lists_the_presets(spec: str) -> None:
    with pytest.raises(UserError, match="unknown model") as info:
        resolve_model(spec)
    assert "llama2" in (info.value.fix or "") and "local folder" in (info.value.fix or "")


def test_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a model folder"):
        resolve_model(str(tmp_path))


def test_a_hub_model_that_cannot_be_fetched_is_a_user_error() -> None:
    ref = resolve_model("nobody-here/no-such-model")
    with pytest.raises(UserError, match="cannot load 'nobody-here/no-such-model'") as info:
        load_model(ref, device="cpu")
    assert "local folder" in (info.value.fix or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("cpu", "cpu"), ("CUDA", "cuda:0"), ("cuda:3", "cuda:3"), ("auto", "auto"), ("mps", "mps")],
)
def test_device_syntax(text: str, expected: str) -> None:
    assert parse_device(text) == expected


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cuda:-1", "tpu"])
def test_bad_device_syntax_names_the_option(text: str) -> None:
    with pytest.raises(UserError, match="invalid device") as info:
        parse_device(text)
    assert info.value.where == "--device"


def test_a_missing_gpu_is_reported_before_loading() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match=r"cuda:1 is not available: this machine has 0 CUDA GPU"):
        check_device("cuda:1")


def test_dtypes() -> None:
    assert parse_dtype("bf16") == "bfloat16" and parse_dtype("float32") == "float32"
    with pytest.raises(UserError, match="invalid dtype"):
        parse_dtype("int3")
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("float16", "cpu") == "float16"


def test_four_bit_without_cuda_is_a_clear_error(tiny_model_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="4-bit loading needs a CUDA GPU"):
        load_model(resolve_model(str(tiny_model_dir)), device="cpu", load_in_4bit=True)


def test_a_model_without_a_chat_template_gets_the_plain_one(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    folder = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer, source = load_tokenizer(resolve_model(str(folder)))
    assert source == "plain" and tokenizer.chat_template == PLAIN_TEMPLATE
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Sure, first"}],
        tokenize=False,
        continue_final_message=True,
    )
    assert rendered == "<|bos|>User: Hi\n\nAssistant: Sure, first"


def test_a_preset_without_a_tokenizer_template_uses_the_preset_one(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from ccapp.engines.generation.models import ModelRef

    folder = tmp_path / "vicuna-like"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink()
    ref = ModelRef("vicuna", str(folder), PRESETS["vicuna"], is_local=True)
    tokenizer, source = load_tokenizer(ref)
    assert source == "preset"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Sure, first"}],
        tokenize=False,
        continue_final_message=True,
    )
    assert rendered.endswith("USER: Hi ASSISTANT: Sure, first")


def test_a_lora_adapter_folder_loads_on_its_base(tmp_path: Path, tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(tmp_path / "adapter")
    ref = resolve_model(str(tmp_path / "adapter"))
    assert ref.adapter_base == str(tiny_model_dir)
    loaded = load_model(ref, device="cpu")
    assert type(loaded.model).__name__.startswith("Peft")
    assert loaded.tokenizer.eos_token == "<|end|>"


def test_an_adapter_without_a_base_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(UserError, match="base_model_name_or_path"):
        resolve_model(str(tmp_path))


def test_a_model_field_being_typed_or_mistyped_is_told_which_preset_it_is_near() -> None:
    from ccapp.engines.generation.models import model_problem

    assert model_problem("smol") == "not a preset yet: the start of the preset smollm2"
    assert model_problem("qwen") == (
        "not a preset yet: the start of the presets qwen_05, qwen_15, qwen_7, qwen_72"
    )
    assert (model_problem("smollm-2") or "").startswith("not a preset: did you mean smollm2?")
    assert (model_problem("xyzzy") or "").startswith("unknown model: not a preset (llama2, vicuna")
    assert model_problem("smollm2") is None
