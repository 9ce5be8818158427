"""The one-call GPU check (benchmarks/gpu_check.py) works before it ever meets a GPU.

Its real run needs an H200 and gets one short try, so a broken script must fail here: the
smoke mode runs the same code on CPU with a tiny Llama, and the 7B shape and its roofline
arithmetic are checked on the meta device (no memory, no GPU).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
# the smoke mode with fewer rows and tokens than its defaults, to keep this test short
# (3 repeats: on a busy CPU the best of each kind of run is still telling)
SMALL_SMOKE = ["--smoke", "--batch-sizes", "4,8", "--max-new-tokens", "8", "--prompt-tokens", "40"]
SMALL_SMOKE += ["--repeats", "3"]


def load_gpu_check() -> ModuleType:
    """The script as a module (benchmarks/ is no package); it imports torch only when used."""
    if "gpu_check" in sys.modules:
        return sys.modules["gpu_check"]
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_smoke_mode_writes_a_complete_report_with_sane_numbers(tmp_path: Path) -> None:
    """Sampling at two batch sizes and a LoRA DPO step, end to end in a subprocess, as the
    GPU run would do them; the report holds every field the README table reads."""
    out = tmp_path / "report" / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *SMALL_SMOKE, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "decode tok/s" in done.stdout and "DPO LoRA" in done.stdout
    report = json.loads(out.read_text())

    assert report["mode"] == "smoke" and report["complete"] is True
    assert report["elapsed_s"] < report["budget_s"]
    assert report["model"]["layers"] == 2 and report["model"]["hidden"] == 64
    assert report["workload"]["temperature"] == 0.8 and report["workload"]["top_p"] == 0.7

    generation = report["generation"]
    assert [e["rows"] for e in generation] == [4, 8]
    for entry in generation:
        assert entry["status"] == "ok", entry
        assert entry["prompts"] == math.ceil(entry["rows"] / 4)  # 4 paths forked per prefill
        assert 0 < entry["generated_tokens"] <= entry["rows"] * 8
        assert entry["decode_steps"] == 7  # 8 samples, the first from the prefill's logits
        assert entry["tokens_per_s"] > 0 and entry["peak_mem_gib"] > 0
        assert entry["total_s"] == min(entry["runs_s"])
    timed = [e for e in generation if "decode_s" in e]
    assert timed, "no batch separated decode from prefill"
    for entry in timed:
        assert 0 < entry["decode_s"] < entry["total_s"]
        # a CPU reaches a tiny fraction of an H200's 4.8 TB/s; above 1 would mean miscounting
        assert 0 < entry["roofline_weights_fraction"] < 1
        assert 0 < entry["roofline_fraction"] < 1
        # reading the KV cache too can only lower the bound
        assert entry["roofline_tokens_per_s"] < entry["roofline_weights_tokens_per_s"]

    dpo = report["dpo"]
    assert dpo["status"] == "ok", dpo
    assert dpo["steps"] == 2 and dpo["step_s"] > 0
    assert 0 < dpo["trainable_params"] < report["model"]["params"]
    # LoRA starts as a no-op, so the policy equals its reference: the first loss is ln 2
    assert dpo["loss_first"] == pytest.approx(math.log(2), abs=1e-4)
    assert math.isfinite(dpo["loss_last"])


def test_the_model_is_llama_2_7b_shaped_and_its_roofline_bytes_are_right() -> None:
    """Built on the meta device: 6.74B parameters; a decode step reads 13.2 GB of bf16
    weights (all but the input embeddings) and 0.5 MB of keys and values per cached token."""
    import torch

    gpu_check = load_gpu_check()
    model = gpu_check.build_model(gpu_check.LLAMA2_7B, torch.device("meta"), torch.bfloat16)
    assert sum(p.numel() for p in model.parameters()) == 6_738_415_616
    assert gpu_check.decode_weight_bytes(model) == 2 * (6_738_415_616 - 32000 * 4096)
    assert gpu_check.kv_bytes_per_token(model) == 2 * 32 * 4096 * 2


def test_lora_and_dpo_settings_match_what_ccapp_trains_with() -> None:
    """The step timed on the GPU is the step `ccapp train --method lora` takes."""
    from ccapp.engines.dpo.train import DEFAULT_LR, TrainConfig, Training

    gpu_check = load_gpu_check()
    config = TrainConfig(pairs="unused", model="unused")
    lora = Training._peft_config(config)
    assert {
        "r": lora.r,
        "lora_alpha": lora.lora_alpha,
        "lora_dropout": lora.lora_dropout,
    } == gpu_check.LORA
    assert lora.target_modules == "all-linear"
    assert DEFAULT_LR["lora"] == gpu_check.DPO_LR
    assert config.beta == gpu_check.DPO_BETA
    assert config.max_length == gpu_check.DPO_MAX_LENGTH


def test_the_time_guard_skips_a_batch_size_that_cannot_fit(tmp_path: Path) -> None:
    """A size is skipped when the time the previous size took, scaled by rows, would pass
    the deadline kept before DPO; a spent budget cancels the run and skips DPO."""
    import torch

    gpu_check = load_gpu_check()
    shape = gpu_check.SMOKE
    tokenizer = gpu_check.build_tokenizer(shape.vocab)
    model = gpu_check.build_model(shape, torch.device("cpu"), torch.float32)
    out = tmp_path / "guard.json"
    args = gpu_check.parse_args(
        [
            "--smoke",
            "--batch-sizes",
            "4,400000",
            "--max-new-tokens",
            "4",
            "--prompt-tokens",
            "16",
            "--repeats",
            "1",
            "--out",
            str(out),
        ]
    )
    budget = time.monotonic() - gpu_check.STARTED + 60 + args.dpo_reserve_s  # 60 s to spend
    report: dict = {"model": {}, "generation": []}
    gpu_check.run_generation(
        model, tokenizer, args, shape, torch.device("cpu"), gpu_check.Clock(budget), report
    )
    small, huge = report["generation"]
    assert small["status"] == "ok"
    assert huge["status"] == "skipped" and huge["reason"].startswith("time guard")
    assert json.loads(out.read_text())["generation"][1]["status"] == "skipped"

    spent = gpu_check.Clock(time.monotonic() - gpu_check.STARTED)  # nothing left
    report = {"model": {}, "generation": []}
    gpu_check.run_generation(model, tokenizer, args, shape, torch.device("cpu"), spent, report)
    assert [e["status"] for e in report["generation"]] == ["skipped", "skipped"]
    dpo = gpu_check.run_dpo(model, tokenizer, args, shape, torch.device("cpu"), spent)
    assert dpo["status"] == "skipped" and dpo["reason"].startswith("time guard")
