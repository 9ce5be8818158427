"""C2-Eval throughput: ccapp's engine vs plain `generate` and vs the paper's loop.

Same model, same requests, same prefills and the same resolved sampling settings (b paths ×
32 new tokens, temperature 0.8, top_p 0.7, and the top_k / repetition penalty the model's
generation config implies), measured side by side in one process:

- **ccapp**: prefills each (request, k) once, forks the KV cache across its b paths, and packs
  batches across (request, k, path) sorted by length; its time includes judging and writing
  every continuation to its SQLite store.
- **hf-generate**: what a competent user writes instead — `model.generate(...,
  num_return_sequences=b)` on batches of prompts.
- **ccapp, cache copied per path**: the same engine with cascade attention off (the KV
  cache's prompt rows copied to each path, as ccapp does on a GPU), to show what the
  cascade adds on this CPU.
- **paper loop**: the paper's code, `generate` once per batch of 10 requests, per k, per path,
  so every path re-runs its prompt.

It also prints the forward passes' achieved GFLOP/s (2 × parameters × tokens processed, by
ccapp) against this CPU's matmul peak, measured in the same run.

    python benchmarks/bench_eval.py                          # tiny model, 40 × 8 k × 4 × 32
    python benchmarks/bench_eval.py --size small             # a ~25M-parameter model
    python benchmarks/bench_eval.py --model smollm2          # the real 135M model, b = 4 and 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

KS = (10, 20, 30, 40, 50, 60, 70, 80)


def build_model(folder: Path, size: str) -> Path:
    from ccapp.engines.generation.tiny import build_tiny_model

    if size == "tiny":
        return build_tiny_model(folder, seed=0)
    return build_tiny_model(folder, seed=0, layers=4, hidden=512)


def paper_loop(
    model_dir: Path,
    cells: list[tuple[str, str]],
    paths: int,
    max_new: int,
    ks: tuple[int, ...] = KS,
) -> int:
    """The paper's evaluation loop, fixed only where it was broken (it now renders with
    continue_final_message and runs every request and path)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    produced = 0
    torch.manual_seed(0)
    for k in ks:
        prompts = [p for kk, p in cells if kk == str(k)]
        for _path in range(paths):
            for start in range(0, len(prompts), 10):
                batch = tokenizer(
                    prompts[start : start + 10],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,
                )
                with torch.inference_mode():
                    out = model.generate(
                        **batch,
                        max_new_tokens=max_new,
                        do_sample=True,
                        temperature=0.8,
                        top_p=0.7,
                        pad_token_id=tokenizer.pad_token_id,
                    )
                texts = tokenizer.batch_decode(
                    out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
                )
                produced += len(texts)
    return produced


def hf_generate_loop(
    model_dir: Path,
    cells: list[tuple[str, str]],
    paths: int,
    max_new: int,
    sampling: dict[str, object],
    prompts_per_call: int = 8,
) -> int:
    """Plain transformers: batched prompts, `num_return_sequences=b`, the same settings."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompts = sorted((p for _, p in cells), key=len)
    torch.manual_seed(0)
    produced = 0
    for start in range(0, len(prompts), prompts_per_call):
        batch = tokenizer(
            prompts[start : start + prompts_per_call],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=max_new,
                do_sample=True,
                num_return_sequences=paths,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        produced += len(tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :]))
    return produced


def time_without_cascade(config: object, db: Path) -> float:
    """ccapp's engine with the forked KV cache copied per path, as on a GPU: what the
    cascade attention (ccapp.engines.generation.forked_attention) adds on this CPU."""
    from ccapp.engines.c2eval.evaluate import Evaluation
    from ccapp.engines.generation import forked_attention
    from ccapp.store import Store

    supports = forked_attention.supports
    forked_attention.supports = lambda model: False
    try:
        with Store.open(db) as store:
            started = time.perf_counter()
            Evaluation(store).start(config)
            return time.perf_counter() - started
    finally:
        forked_attention.supports = supports


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """What this CPU's float32 matmul reaches with torch's threads: the practical peak."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/c2eval_test.jsonl")
    )
    parser.add_argument(
        "--model", default=None, help="a --model spec (e.g. smollm2); default: a built toy model"
    )
    parser.add_argument("--requests", type=int, default=None, help="default 40 (toy), 4 (--model)")
    parser.add_argument("--ks", default=None, help="default 10,…,80 (toy), 10,40,80 (--model)")
    parser.add_argument(
        "--paths", default=None, help="b values, e.g. 4,20 (default 4; 4,20 with --model)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--size", choices=["tiny", "small"], default="tiny")
    parser.add_argument("--skip-paper", action="store_true", help="leave the paper loop out")
    parser.add_argument(
        "--skip-copied", action="store_true", help="leave out ccapp without cascade attention"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="ccapp rows per batch (default: auto)"
    )
    args = parser.parse_args()
    real = args.model is not None
    requests = args.requests or (4 if real else 40)
    ks = tuple(
        int(k) for k in (args.ks or ("10,40,80" if real else ",".join(map(str, KS)))).split(",")
    )
    b_values = [int(b) for b in (args.paths or ("4,20" if real else "4")).split(",")]

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401  (import cost paid once, outside every timing)

    from ccapp.engines.c2eval.evaluate import EvalConfig, Evaluation
    from ccapp.engines.generation.models import resolve_model
    from ccapp.store import Store
    from ccapp.store import evals as rows_store

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = (
            Path(resolve_model(args.model).source)
            if real
            else build_model(Path(tmp) / "model", args.size)
        )
        params = sum(
            p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters()
        )
        name = args.model or f"{args.size} toy model"
        peak = matmul_peak_gflops()
        print(
            f"model: {name} ({params / 1e6:.1f}M parameters), CPU, {torch.get_num_threads()} "
            f"threads; matmul peak {peak:.0f} GFLOP/s"
        )
        for b in b_values:
            config = EvalConfig(
                str(model_dir),
                args.data,
                ks=ks,
                paths=b,
                limit=requests,
                max_new_tokens=args.max_new_tokens,
                device="cpu",
                batch_size=args.batch_size,
            )
            with Store.open(Path(tmp) / f"warmup-{b}.db") as store:  # first-use costs: paid by none
                warm = Evaluation(store).start(replace(config, limit=1, paths=1, ks=(10,)))
                warm_cells = [
                    (str(c.k), c.rendered_prompt) for c in rows_store.get_cells(store, warm.id)
                ]
            with Store.open(Path(tmp) / f"bench-{b}.db") as store:
                started = time.perf_counter()
                run = Evaluation(store).start(config)
                ccapp_s = time.perf_counter() - started
                cells = [
                    (str(c.k), c.rendered_prompt, c.prompt_tokens)
                    for c in rows_store.get_cells(store, run.id)
                ]
                continuations = rows_store.continuations(store, run.id)
                resolved = run.config.get("sampling_resolved") or {}
            sampling = {
                "temperature": config.temperature,
                "top_p": config.top_p,
                "top_k": resolved.get("top_k", 50),
                "repetition_penalty": resolved.get("repetition_penalty", 1.0),
            }
            ours = len(continuations)
            expected = requests * len(ks) * b
            copied_s = None
            if not args.skip_copied:
                copied_s = time_without_cascade(config, Path(tmp) / f"copied-{b}.db")
            hf_generate_loop(model_dir, warm_cells, 1, 2, sampling)  # its own warm-up
            started = time.perf_counter()
            generated = hf_generate_loop(
                model_dir, [(k, p) for k, p, _ in cells], b, args.max_new_tokens, sampling
            )
            hf_s = time.perf_counter() - started
            assert ours == generated == expected, (ours, generated, expected)
            print(
                f"b = {b}: {requests} requests × {len(ks)} k × {b} paths × "
                f"{args.max_new_tokens} tokens = {ours} continuations "
                f"(top_k {sampling['top_k']}, repetition penalty {sampling['repetition_penalty']})"
            )
            print(
                f"  ccapp engine : {ours / ccapp_s:8.2f} continuations/s  ({ccapp_s:6.1f} s, incl. judging + store)"
            )
            print(f"  hf-generate  : {generated / hf_s:8.2f} continuations/s  ({hf_s:6.1f} s)")
            print(f"  ratio vs hf-generate: {hf_s / ccapp_s:.2f}")
            if copied_s is not None:
                print(
                    f"  ccapp, cache copied per path (no cascade): {ours / copied_s:8.2f} "
                    f"continuations/s ({copied_s:6.1f} s); the cascade is {copied_s / ccapp_s:.2f}× that"
                )
            if not args.skip_paper:
                started = time.perf_counter()
                theirs = paper_loop(
                    model_dir, [(k, p) for k, p, _ in cells], b, args.max_new_tokens, ks=ks
                )
                paper_s = time.perf_counter() - started
                assert theirs == expected
                print(
                    f"  paper loop   : {theirs / paper_s:8.2f} continuations/s  ({paper_s:6.1f} s)"
                )
                print(f"  ratio vs paper loop: {paper_s / ccapp_s:.2f}")
            # Forward work ccapp did: each prompt once, then every path's new tokens.
            tokens = sum(t for _, _, t in cells) + sum(c.new_tokens for c in continuations)
            achieved = 2 * params * tokens / ccapp_s / 1e9
            print(
                f"  forward passes: {achieved:.1f} GFLOP/s achieved = {achieved / peak:.0%} of "
                f"the matmul peak (2 × params × {tokens} tokens; attention and sampling excluded)"
            )


if __name__ == "__main__":
    main()
