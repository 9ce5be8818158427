"""One-call GPU check: C2-Eval sampling throughput and a DPO LoRA step on a Llama-2-7B shape.

Built for one NVIDIA H200 (141 GB HBM3e, ~4.8 TB/s) with no internet, so the model is a
Llama-2-7B-shaped LlamaForCausalLM with random bf16 weights, created directly on the GPU
from its config, and the tokenizer is a word-level one built here (no Hub access). Random
weights give the same cost per step as trained ones; they almost never sample the end
token, so every row decodes all its new tokens: the worst case for throughput.

1. Sampling with ccapp's `hf` engine (`HFGenerator.generate`, the call C2-Eval makes): the
   C2-Eval shape — prompts of ~150 tokens, 32 new tokens, temperature 0.8, top_p 0.7, each
   prompt prefilled once and its KV cache forked to `--paths` rows — at 64, 128, 256 and 512
   rows per batch. A prefill-only run (one new token) is timed too, so the decode steps are
   timed apart from the prefill and set against the memory-bandwidth roofline: every decode
   step reads all weights once (all but the input embeddings, ~13 GB in bf16) plus every
   row's cached keys and values, so steps/s <= bandwidth / bytes read per step.
2. One DPO LoRA step with TRL on the same model, built as ccapp's `engines/dpo/train.py` builds
   its DPOTrainer (LoRA r 16 on all linear layers, beta 0.1, lr 5e-5, sigmoid loss), on
   synthetic preference pairs of ~300 tokens.

A global time guard (`--budget-s`, default 420 s including imports) keeps the whole check
under 8 minutes: it skips batch sizes that would not fit before the time kept for DPO, a
batch already running is cancelled between decode steps at that deadline, and DPO stops
after the step that crosses the budget. The JSON report is rewritten after every phase, so
a killed run still leaves what it measured. Exit status 1 when a phase failed (its error is
in the report), else 0.

    python benchmarks/gpu_check.py [--out gpu_check.json]    # on the GPU machine
    python benchmarks/gpu_check.py --smoke                   # same code on CPU, tiny config

Needs torch, transformers and tokenizers for part 1; trl, peft and datasets for part 2
(reported as skipped when missing). ccapp itself is imported from this checkout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STARTED = time.monotonic()  # the budget counts from here, imports included

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the GPU machine runs this from a bare checkout
    sys.path.insert(0, str(REPO))

GIB = 1024**3
SPECIALS = ("<|bos|>", "<|end|>", "<|pad|>", "<|unk|>")
BOS_ID, EOS_ID, PAD_ID, UNK_ID = range(len(SPECIALS))

# ccapp's DPO defaults for LoRA (ccapp/engines/train.py TrainConfig); a test keeps them equal.
LORA: dict[str, Any] = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
DPO_LR = 5e-5
DPO_BETA = 0.1
DPO_MAX_LENGTH = 1024


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int


LLAMA2_7B = Shape(hidden=4096, layers=32, heads=32, intermediate=11008, vocab=32000)
SMOKE = Shape(hidden=64, layers=2, heads=4, intermediate=256, vocab=2048)


class Clock:
    """Seconds since the script started, against the budget."""

    def __init__(self, budget_s: float):
        self.budget_s = budget_s

    def elapsed(self) -> float:
        return time.monotonic() - STARTED

    def left(self) -> float:
        return self.budget_s - self.elapsed()


# -- building ------------------------------------------------------------------------------


def build_tokenizer(vocab_size: int) -> Any:
    """A word-level tokenizer: token `wN` is id N, so any sampled id decodes and a prompt of
    n words is exactly n tokens. Built in memory, no download."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS)}
    vocab.update({f"w{i}": i for i in range(len(SPECIALS), vocab_size)})
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIALS[UNK_ID]))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=SPECIALS[BOS_ID],
        eos_token=SPECIALS[EOS_ID],
        pad_token=SPECIALS[PAD_ID],
        unk_token=SPECIALS[UNK_ID],
        padding_side="left",
        model_max_length=DPO_MAX_LENGTH * 4,
    )


def build_model(shape: Shape, device: Any, dtype: Any) -> Any:
    """Llama with random weights, allocated and initialised on `device` in `dtype` (on a GPU
    the 7B initialisation takes seconds; on a CPU in fp32 it would take minutes)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    if next(model.parameters()).device.type != device.type:  # a transformers that ignored it
        model.to(device)
    return model.eval()


def make_prompts(rows: int, paths: int, prompt_tokens: int, vocab: int, seed: int) -> list[Any]:
    """C2-Eval batches: each prompt's paths share one prefill; ccapp's planner sorts cells by
    length, so a batch holds prompts of nearly equal length (here prompt_tokens ± 3%)."""
    from ccapp.engines.generation.types import Prompt

    rng = random.Random(seed)
    spread = max(1, prompt_tokens // 32)
    prompts: list[Any] = []
    start = 0
    while start < rows:
        take = min(paths, rows - start)
        length = max(2, prompt_tokens + rng.randint(-spread, spread))
        ids = [BOS_ID, *(rng.randrange(len(SPECIALS), vocab) for _ in range(length - 1))]
        prompts.append(Prompt(key=len(prompts), ids=ids, paths=range(take)))
        start += take
    return prompts


# -- measuring -----------------------------------------------------------------------------


def sync(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def reset_peak(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: Any) -> float:
    """GPU: the most memory torch held allocated since the last reset. CPU: the process's
    peak resident size so far (the OS does not reset it)."""
    if device.type == "cuda":
        import torch

        return round(torch.cuda.max_memory_allocated(device) / GIB, 3)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB, 3)


def free_memory(device: Any) -> None:
    gc.collect()
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def decode_weight_bytes(model: Any) -> int:
    """Bytes one decode step must read: every parameter except the input embedding table,
    of which a step gathers only one row per sequence."""
    embedding = model.get_input_embeddings().weight
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    tied = embedding is model.get_output_embeddings().weight
    return total if tied else total - embedding.numel() * embedding.element_size()


def kv_bytes_per_token(model: Any) -> int:
    """Keys and values of one token in every layer."""
    cfg = model.config
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    element = next(model.parameters()).element_size()
    return 2 * cfg.num_hidden_layers * kv_heads * head_dim * element


def timed_generate(
    generator: Any, prompts: list[Any], sampling: Any, seed: int, device: Any, deadline: float
) -> tuple[float, list[Any]]:
    """One `HFGenerator.generate` call, cancelled between steps if the deadline passes."""
    cancel = threading.Event()
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cancel.set)
    timer.daemon = True
    timer.start()
    try:
        sync(device)
        started = time.perf_counter()
        results = generator.generate(prompts, sampling, seed, cancel=cancel)
        sync(device)
        return time.perf_counter() - started, results
    finally:
        timer.cancel()


def measure_batch(
    generator: Any,
    rows: int,
    args: argparse.Namespace,
    shape: Shape,
    device: Any,
    deadline: float,
    weight_bytes: int,
    kv_per_token: int,
) -> dict[str, Any]:
    """`--repeats` times a prefill-only run and a full run of one batch; the fastest of each
    counts, and their difference is the decode time."""
    from ccapp.engines.generation.types import Sampling

    prompts = make_prompts(rows, args.paths, args.prompt_tokens, shape.vocab, seed=rows)
    full = Sampling(max_new_tokens=args.max_new_tokens, temperature=0.8, top_p=0.7)
    prefill_only = Sampling(max_new_tokens=1, temperature=0.8, top_p=0.7)
    reset_peak(device)
    prefills: list[float] = []
    runs: list[tuple[float, list[Any]]] = []
    for repeat in range(args.repeats):  # interleaved, so a slow spell hits both kinds alike
        prefills.append(timed_generate(generator, prompts, prefill_only, 0, device, deadline)[0])
        runs.append(timed_generate(generator, prompts, full, 1 + repeat, device, deadline))
    prefill_s = min(prefills)
    total_s, results = min(runs, key=lambda run: run[0])
    generated = sum(r.new_tokens for r in results)
    # samples taken = the longest row's tokens (+1 for a sampled end token); forwards = that - 1
    samples = max(r.new_tokens + (1 if r.finish_reason == "eos" else 0) for r in results)
    forwards = max(1, samples - 1)
    decode_s = total_s - prefill_s
    entry: dict[str, Any] = {
        "rows": rows,
        "prompts": len(prompts),
        "status": "ok",
        "prompt_tokens_mean": round(statistics.mean(len(p.ids) for p in prompts), 1),
        "runs_s": [round(t, 4) for t, _ in runs],
        "total_s": round(total_s, 4),
        "prefill_s": round(prefill_s, 4),
        "decode_steps": forwards,
        "generated_tokens": generated,
        "tokens_per_s": round(generated / total_s, 1),
        "peak_mem_gib": peak_gib(device),
    }
    if decode_s < 0.05 * total_s:  # a loaded CPU can time the prefill-only run above a full one
        return entry | {"decode_note": "timings too noisy to separate decode from prefill"}
    bandwidth = args.bandwidth_gbs * 1e9
    # The least any engine must read: the weights once per step, and each row's real context
    # (its prompt, not the padding, plus the tokens so far) once per step.
    lengths = [len(p.ids) for p in prompts for _ in p.paths]
    static_len = max(lengths) + args.max_new_tokens
    kv_bytes = kv_per_token * sum(n * forwards + forwards * (forwards + 1) // 2 for n in lengths)
    decode_bytes = weight_bytes * forwards + kv_bytes
    decode_tokens_per_s = rows * forwards / decode_s
    bound_weights = bandwidth / weight_bytes * rows
    bound_kv = rows * forwards / (decode_bytes / bandwidth)
    return entry | {
        "decode_s": round(decode_s, 4),
        "decode_tokens_per_s": round(decode_tokens_per_s, 1),
        "decode_steps_per_s": round(forwards / decode_s, 2),
        "roofline_weights_tokens_per_s": round(bound_weights, 1),
        "roofline_weights_fraction": _sig(decode_tokens_per_s / bound_weights),
        "kv_read_gb_per_step": round(kv_bytes / forwards / 1e9, 3),
        # with a preallocated (static) cache, attention reads every row's whole cache, padding
        # and not-yet-written slots included: what this engine moves, beyond the least above
        "static_kv_read_gb_per_step": round(rows * kv_per_token * static_len / 1e9, 3)
        if generator.static_cache
        else None,
        "roofline_tokens_per_s": round(bound_kv, 1),
        "roofline_fraction": _sig(decode_tokens_per_s / bound_kv),
        "achieved_gbs": _sig(decode_bytes / decode_s / 1e9),
    }


def run_generation(
    model: Any,
    tokenizer: Any,
    args: argparse.Namespace,
    shape: Shape,
    device: Any,
    clock: Clock,
    report: dict[str, Any],
) -> bool:
    """Every batch size in turn, under the time guard; False when one failed."""
    from ccapp.engines.generation.hf_generate import HFGenerator
    from ccapp.engines.generation.types import Cancelled, Sampling

    generator = HFGenerator(model, tokenizer)
    weight_bytes = decode_weight_bytes(model)
    kv_per_token = kv_bytes_per_token(model)
    report["model"]["decode_weight_gb"] = round(weight_bytes / 1e9, 3)
    report["model"]["kv_bytes_per_token"] = kv_per_token
    deadline_in = clock.left() - args.dpo_reserve_s
    deadline = time.monotonic() + deadline_in
    entries: list[dict[str, Any]] = report["generation"]

    # Warm-up: CUDA context, cuBLAS handles and kernel choices, paid by no timed run.
    warm = make_prompts(min(args.batch_sizes), args.paths, args.prompt_tokens, shape.vocab, 0)
    started = time.perf_counter()
    try:
        timed_generate(generator, warm, Sampling(max_new_tokens=4), 0, device, deadline)
    except Cancelled:
        entries.extend(
            {"rows": r, "status": "skipped", "reason": "time guard: no time left after warm-up"}
            for r in args.batch_sizes
        )
        return True
    report["warmup_s"] = round(time.perf_counter() - started, 3)

    ok = True
    last: tuple[int, float] | None = None  # (rows, seconds the size took)
    for rows in sorted(args.batch_sizes):
        entry: dict[str, Any] = {"rows": rows}
        seconds_left = deadline - time.monotonic()
        if last is not None:
            # time grows at most in proportion to the rows; a margin for the larger cache
            estimate = last[1] * rows / last[0] * 1.25
            if estimate > seconds_left:
                entry |= {
                    "status": "skipped",
                    "reason": f"time guard: needs ~{estimate:.0f} s, {seconds_left:.0f} s left",
                }
                entries.append(entry)
                write_report(report, args.out)
                continue
        started = time.perf_counter()
        try:
            entry = measure_batch(
                generator, rows, args, shape, device, deadline, weight_bytes, kv_per_token
            )
        except Cancelled:
            entry |= {"status": "cancelled", "reason": "time guard: the budget ran out mid-batch"}
        except Exception as exc:
            oom = type(exc).__name__ == "OutOfMemoryError"
            if not oom:
                traceback.print_exc()
                ok = False
            entry |= {"status": "error", "reason": _one_line(exc)}
            entries.append(entry)
            free_memory(device)
            write_report(report, args.out)
            if oom:  # larger batches will not fit either
                for bigger in (r for r in sorted(args.batch_sizes) if r > rows):
                    entries.append(
                        {"rows": bigger, "status": "skipped", "reason": "a smaller batch ran OOM"}
                    )
                break
            continue
        last = (rows, time.perf_counter() - started)
        entries.append(entry)
        free_memory(device)
        write_report(report, args.out)
    return ok


# -- DPO ----------------------------------------------------------------------------------


def preference_pairs(count: int, tokens: int, vocab: int) -> list[dict[str, str]]:
    """Synthetic pairs in TRL's standard (text) format: half the tokens prompt, half answer."""
    rng = random.Random(7)

    def words(n: int) -> str:
        return " ".join(f"w{rng.randrange(len(SPECIALS), vocab)}" for _ in range(n))

    half = tokens // 2  # TRL joins prompt and answer as strings: the space keeps words apart
    return [
        {"prompt": words(half), "chosen": " " + words(half), "rejected": " " + words(half)}
        for _ in range(count)
    ]


def run_dpo(
    model: Any,
    tokenizer: Any,
    args: argparse.Namespace,
    shape: Shape,
    device: Any,
    clock: Clock,
) -> dict[str, Any]:
    """`--dpo-steps` LoRA DPO steps; the first pays for set-up, the median of the rest counts."""
    if clock.left() < args.dpo_min_s:
        return {
            "status": "skipped",
            "reason": f"time guard: {clock.left():.0f} s left, DPO needs ~{args.dpo_min_s:.0f} s",
        }
    try:
        import datasets
        import peft
        import trl
    except ImportError as exc:  # missing, or a version that does not fit this transformers
        return {"status": "skipped", "reason": f"cannot import DPO's stack: {_one_line(exc)}"}
    import torch
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class StepTimer(TrainerCallback):
        """Times each optimizer step (synchronised) and stops once the budget is spent."""

        def __init__(self) -> None:
            self.begun = 0.0
            self.steps: list[float] = []
            self.losses: list[float] = []

        def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            sync(device)
            self.begun = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            sync(device)
            self.steps.append(time.perf_counter() - self.begun)
            if clock.left() < 0:
                control.should_training_stop = True

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
        ) -> None:
            if logs and isinstance(logs.get("loss"), (int, float)):
                self.losses.append(float(logs["loss"]))

    datasets.disable_progress_bars()
    on_gpu = device.type == "cuda"
    pairs = preference_pairs(args.dpo_batch * args.dpo_steps, args.dpo_tokens, shape.vocab)
    timer = StepTimer()
    free_memory(device)
    reset_peak(device)
    with tempfile.TemporaryDirectory() as scratch:
        config = trl.DPOConfig(
            output_dir=scratch,
            per_device_train_batch_size=args.dpo_batch,
            max_steps=args.dpo_steps,
            learning_rate=DPO_LR,
            beta=DPO_BETA,
            max_length=DPO_MAX_LENGTH,
            logging_steps=1,
            save_strategy="no",
            seed=0,
            bf16=on_gpu and torch.cuda.is_bf16_supported(),
            use_cpu=not on_gpu,
            report_to=[],
            activation_checkpointing=False,
            loss_type=["sigmoid"],
            disable_tqdm=True,
        )
        lora = peft.LoraConfig(**LORA, target_modules="all-linear", task_type="CAUSAL_LM")
        model.train()
        set_up = time.perf_counter()
        trainer = trl.DPOTrainer(
            model=model,
            ref_model=None,  # with LoRA the reference is the base with the adapter off
            args=config,
            train_dataset=datasets.Dataset.from_list(pairs),
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[timer],
        )
        for noisy in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(noisy)
        set_up_s = time.perf_counter() - set_up
        trainer.train()
    trained: Any = trainer.model
    trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)
    if not timer.steps:
        raise RuntimeError("DPOTrainer ran no step")
    timed = timer.steps[1:] or timer.steps
    return {
        "status": "ok",
        "steps": len(timer.steps),
        "batch_pairs": args.dpo_batch,
        "seq_tokens": args.dpo_tokens,
        "setup_s": round(set_up_s, 3),
        "first_step_s": round(timer.steps[0], 4),
        "step_s": round(statistics.median(timed), 4),
        "steps_s": [round(t, 4) for t in timer.steps],
        "pairs_per_s": round(args.dpo_batch / statistics.median(timed), 2),
        "trainable_params": trainable,
        "loss_first": timer.losses[0] if timer.losses else None,
        "loss_last": timer.losses[-1] if timer.losses else None,
        "peak_mem_gib": peak_gib(device),
    }


# -- reporting ----------------------------------------------------------------------------


def _sig(value: float, digits: int = 4) -> float:
    """Rounded to significant digits: a CPU's fraction of an H200 roofline is ~1e-5, not 0."""
    return float(f"{value:.{digits}g}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def write_report(report: dict[str, Any], out: Path) -> None:
    """Rewritten after every phase (through a temporary file, so it is never half-written)."""
    report["elapsed_s"] = round(time.monotonic() - STARTED, 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(out.name + ".tmp")
    staging.write_text(json.dumps(report, indent=2) + "\n")
    staging.replace(out)


def print_table(report: dict[str, Any]) -> None:
    model = report["model"]
    print(
        f"\n{report['device_name']}: {model['params'] / 1e6:,.1f}M params, {model['dtype']}, "
        f"built in {model['build_s']:.1f} s; roofline at {report['bandwidth_gbs']:.0f} GB/s"
    )
    head = (
        f"{'rows':>5} {'prompts':>7} {'total s':>8} {'tok/s':>9} {'decode tok/s':>12} "
        f"{'bound(w)':>10} {'frac':>6} {'bound(w+kv)':>11} {'frac':>6} {'GB/s':>7} {'peak GiB':>8}"
    )
    print(head)
    for e in report["generation"]:
        if e.get("status") != "ok":
            print(f"{e['rows']:>5} {e.get('status', '?')}: {e.get('reason', '')}")
            continue
        if "decode_s" not in e:
            print(
                f"{e['rows']:>5} {e['prompts']:>7} {e['total_s']:>8.3f} {e['tokens_per_s']:>9.0f} "
                f"  ({e['decode_note']})"
            )
            continue
        print(
            f"{e['rows']:>5} {e['prompts']:>7} {e['total_s']:>8.3f} {e['tokens_per_s']:>9.0f} "
            f"{e['decode_tokens_per_s']:>12.0f} {e['roofline_weights_tokens_per_s']:>10.0f} "
            f"{e['roofline_weights_fraction']:>6.3g} {e['roofline_tokens_per_s']:>11.0f} "
            f"{e['roofline_fraction']:>6.3g} {e['achieved_gbs']:>7.4g} {e['peak_mem_gib']:>8.2f}"
        )
    dpo = report.get("dpo") or {}
    if dpo.get("status") == "ok":
        print(
            f"DPO LoRA: {dpo['batch_pairs']} pairs × ~{dpo['seq_tokens']} tokens: "
            f"{dpo['step_s']:.3f} s/step (first {dpo['first_step_s']:.2f} s), "
            f"{dpo['trainable_params'] / 1e6:.2f}M trained, peak {dpo['peak_mem_gib']:.2f} GiB, "
            f"loss {dpo['loss_first']} -> {dpo['loss_last']}"
        )
    else:
        print(f"DPO LoRA: {dpo.get('status', 'not run')}: {dpo.get('reason', '')}")
    print(f"total {report['elapsed_s']:.1f} s of a {report['budget_s']:.0f} s budget")


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, tiny config (2 layers, hidden 64)"
    )
    parser.add_argument("--batch-sizes", type=str, default=None, help="default 64,128,256,512")
    parser.add_argument(
        "--paths", type=int, default=None, help="rows forked from one prefill; 20 (smoke 4)"
    )
    parser.add_argument("--prompt-tokens", type=int, default=150)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="full runs per size; best counts")
    parser.add_argument("--bandwidth-gbs", type=float, default=4800.0, help="H200: 4800")
    parser.add_argument("--budget-s", type=float, default=None, help="default 420 (smoke 120)")
    parser.add_argument(
        "--dpo-reserve-s", type=float, default=None, help="kept for DPO (default 120, smoke 20)"
    )
    parser.add_argument("--dpo-min-s", type=float, default=None, help="skip DPO with less left")
    parser.add_argument(
        "--dpo-steps", type=int, default=None, help="default 4 (smoke 2); the first is not timed"
    )
    parser.add_argument("--dpo-batch", type=int, default=None, help="pairs; default 4 (smoke 2)")
    parser.add_argument("--dpo-tokens", type=int, default=None, help="default 300 (smoke 64)")
    parser.add_argument("--no-dpo", action="store_true")
    args = parser.parse_args(argv)
    sizes = args.batch_sizes or ("8,16" if args.smoke else "64,128,256,512")
    try:
        args.batch_sizes = sorted({int(s) for s in sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--batch-sizes: '{sizes}' is not a list of integers; give e.g. 64,128")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        parser.error("--batch-sizes: give positive integers, e.g. 64,128")
    smoke_or_gpu = {
        "paths": (4, 20),  # smoke batches then hold several prompts, so left padding is run
        "dpo_steps": (2, 4),
        "dpo_batch": (2, 4),
        "dpo_tokens": (64, 300),
    }
    for name, (smoke, gpu) in smoke_or_gpu.items():
        if getattr(args, name) is None:
            setattr(args, name, smoke if args.smoke else gpu)
    for name in ("paths", "prompt_tokens", "max_new_tokens", "repeats", "dpo_steps", "dpo_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: give at least 1")
    if args.dpo_tokens < 4:
        parser.error("--dpo-tokens: give at least 4")
    if args.budget_s is None:
        args.budget_s = 120.0 if args.smoke else 420.0
    if args.budget_s <= 0 or args.bandwidth_gbs <= 0:
        parser.error("--budget-s and --bandwidth-gbs: give a number above 0")
    if args.dpo_reserve_s is None:
        args.dpo_reserve_s = 20.0 if args.smoke else 120.0
    if args.dpo_min_s is None:
        args.dpo_min_s = 5.0 if args.smoke else 45.0
    if args.no_dpo:
        args.dpo_reserve_s = 0.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    import transformers

    clock = Clock(args.budget_s)
    if args.smoke:
        device, dtype, shape = torch.device("cpu"), torch.float32, SMOKE
        # a tiny model gains nothing from threads, and spinning ones stall on a shared CPU
        torch.set_num_threads(1)
    else:
        if not torch.cuda.is_available():
            print(
                "gpu_check: no CUDA GPU is visible; use --smoke for the CPU check", file=sys.stderr
            )
            return 2
        device, dtype, shape = torch.device("cuda", 0), torch.bfloat16, LLAMA2_7B
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report: dict[str, Any] = {
        "mode": "smoke" if args.smoke else "gpu",
        "device_name": name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "budget_s": args.budget_s,
        "bandwidth_gbs": args.bandwidth_gbs,
        "peak_mem_is": "torch.cuda.max_memory_allocated per phase"
        if device.type == "cuda"
        else "the process's peak RSS so far",
        "workload": {
            "prompt_tokens": args.prompt_tokens,
            "max_new_tokens": args.max_new_tokens,
            "temperature": 0.8,
            "top_p": 0.7,
            "paths_per_prompt": args.paths,
            "batch_sizes": args.batch_sizes,
            "repeats": args.repeats,
        },
        "generation": [],
        "dpo": None,
        "complete": False,
    }
    started = time.perf_counter()
    tokenizer = build_tokenizer(shape.vocab)
    model = build_model(shape, device, dtype)
    sync(device)
    report["model"] = asdict(shape) | {
        "dtype": str(dtype).removeprefix("torch."),
        "params": sum(p.numel() for p in model.parameters()),
        "weight_gib": round(sum(p.numel() * p.element_size() for p in model.parameters()) / GIB, 3),
        "build_s": round(time.perf_counter() - started, 2),
        "memory_after_build_gib": peak_gib(device),
    }
    write_report(report, args.out)

    phase = time.perf_counter()
    try:
        ok = run_generation(model, tokenizer, args, shape, device, clock, report)
    except Exception as exc:  # e.g. the warm-up failed: recorded, DPO still gets its turn
        traceback.print_exc()
        report["generation_error"] = _one_line(exc)
        ok = False
        free_memory(device)
    report["generation_s"] = round(time.perf_counter() - phase, 2)
    write_report(report, args.out)
    phase = time.perf_counter()
    if args.no_dpo:
        report["dpo"] = {"status": "skipped", "reason": "--no-dpo"}
    else:
        try:
            report["dpo"] = run_dpo(model, tokenizer, args, shape, device, clock)
        except Exception as exc:
            traceback.print_exc()
            report["dpo"] = {"status": "error", "reason": _one_line(exc)}
            ok = False
    report["dpo_s"] = round(time.perf_counter() - phase, 2)
    report["complete"] = True
    write_report(report, args.out)
    print_table(report)
    print(f"report: {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
