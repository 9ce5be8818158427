"""C2-Eval throughput: ccapp's engine vs a faithful re-implementation of the paper's loop.

Same model, same requests, same prefills and sampling settings (b paths × 32 new tokens,
temperature 0.8, top_p 0.7), measured side by side in one process. The paper's code calls
`model.generate` once per batch of 10 requests, per k, per path, so every path re-runs its
prompt; ccapp prefills each (request, k) once, forks the KV cache across the paths, and packs
batches across (request, k, path) sorted by length. ccapp's time includes judging and
writing every continuation to its SQLite store; the paper loop's does not.

    python benchmarks/bench_eval.py                   # tiny model, 40 × 8 × 4 × 32
    python benchmarks/bench_eval.py --size small      # a ~25M-parameter model: prefill matters
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

KS = (10, 20, 30, 40, 50, 60, 70, 80)


def build_model(folder: Path, size: str) -> Path:
    from ccapp.engines.tiny import build_tiny_model

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/c2eval_test.jsonl")
    )
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--paths", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--size", choices=["tiny", "small"], default="tiny")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="ccapp rows per batch (default: auto)"
    )
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401  (import cost paid once, outside both timings)

    from ccapp.engines.evaluate import EvalConfig, Evaluation
    from ccapp.store import Store
    from ccapp.store import evals as rows_store

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(Path(tmp) / "model", args.size)
        config = EvalConfig(
            str(model_dir),
            args.data,
            ks=KS,
            paths=args.paths,
            limit=args.requests,
            max_new_tokens=args.max_new_tokens,
            device="cpu",
            batch_size=args.batch_size,
        )
        with Store.open(
            Path(tmp) / "warmup.db"
        ) as store:  # first-use imports, caches: paid by neither
            warm = Evaluation(store).start(replace(config, limit=1, paths=1, ks=(10,)))
            paper_loop(
                model_dir,
                [(str(c.k), c.rendered_prompt) for c in rows_store.get_cells(store, warm.id)],
                1,
                2,
                ks=(10,),
            )
        with Store.open(Path(tmp) / "bench.db") as store:
            started = time.perf_counter()
            run = Evaluation(store).start(config)
            ccapp_s = time.perf_counter() - started
            cells = [(str(c.k), c.rendered_prompt) for c in rows_store.get_cells(store, run.id)]
            ours = len(rows_store.continuations(store, run.id))
        started = time.perf_counter()
        theirs = paper_loop(model_dir, cells, args.paths, args.max_new_tokens)
        paper_s = time.perf_counter() - started
    assert ours == theirs == args.requests * len(KS) * args.paths
    print(
        f"workload: {args.requests} requests × {len(KS)} k × {args.paths} paths × "
        f"{args.max_new_tokens} tokens = {ours} continuations ({args.size} model, CPU, "
        f"{torch.get_num_threads()} threads)"
    )
    print(
        f"ccapp engine : {ours / ccapp_s:8.1f} continuations/s  ({ccapp_s:6.1f} s, incl. judging + store)"
    )
    print(f"paper loop   : {theirs / paper_s:8.1f} continuations/s  ({paper_s:6.1f} s)")
    print(f"ratio        : {paper_s / ccapp_s:8.2f}× faster")


if __name__ == "__main__":
    main()
