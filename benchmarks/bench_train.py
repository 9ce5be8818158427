"""DPO memory and step time: LoRA (reference = the base with the adapter off) vs full DPO
(with a reference copy), on the same ~70M-parameter random Llama and the same pairs, both
through ccapp's training engine (`ccapp train`'s code path).

Each method runs in its own child process, so that each peak RSS is its own.

    python benchmarks/bench_train.py [--steps 4] [--hidden 768] [--layers 10] [--batch-size 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import datasets, peft, torch, transformers, trl  # the libraries' own memory, before any model
from ccapp.engines.dpo.train import TrainConfig, Training
from ccapp.engines.events import Progress
from ccapp.store import Store

model_dir, method, steps, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
batch, max_length = int(sys.argv[5]), int(sys.argv[6])
baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Rate:
    # the engine's own steps/s, measured from the first step: loading is excluded
    rate = 0.0

    def emit(self, event):
        if isinstance(event, Progress) and event.rate:
            self.rate = event.rate

    def tokens(self, deltas):
        pass

    def close(self):
        pass


sink = Rate()
with Store.open(f"{work}/{method}.db") as store:
    run = Training(store, sink).start(TrainConfig(
        pairs=f"{work}/pairs", model=model_dir, method=method, lr=1e-5, batch_size=batch,
        max_length=max_length, max_steps=steps, output=f"{work}/{method}", device="cpu",
        save_steps=10**6,
    ))
print(json.dumps({"method": method, "step_s": 1 / sink.rate, "status": run.status.value,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "baseline_mb": baseline_mb,
                  "params_m": run.metrics["params"] / 1e6}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1, help="pairs per step")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per sequence")
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, LlamaConfig

    from ccapp.engines.generation.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        # the tiny builder's tokenizer and chat template, widened to the size asked for
        model_dir = build_tiny_model(Path(tmp) / "model", layers=2, hidden=64, warmup_steps=0)
        config = LlamaConfig.from_pretrained(model_dir)
        config.hidden_size, config.intermediate_size = args.hidden, args.hidden * 4
        config.num_hidden_layers = args.layers
        config.num_attention_heads = config.num_key_value_heads = args.hidden // 64
        config.head_dim = 64
        AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
        pairs = Path(tmp) / "pairs"
        pairs.mkdir()
        with (pairs / "train.jsonl").open("w") as fh:
            for i in range(64):
                row = {
                    "prompt": [{"role": "user", "content": f"How do I do thing {i}?"}],
                    "chosen": [{"role": "assistant", "content": "I can't help with that. " * 20}],
                    "rejected": [
                        {"role": "assistant", "content": f"Sure, step {i} is easy. " * 20}
                    ],
                }
                fh.write(json.dumps(row) + "\n")
        results = {}
        for method in ("lora", "full"):
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(model_dir),
                    method,
                    str(args.steps),
                    tmp,
                    str(args.batch_size),
                    str(args.max_length),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    lora, full = results["lora"], results["full"]
    print(
        f"model: {full['params_m']:.0f}M parameters, {args.batch_size} pair(s) × "
        f"{args.max_length} tokens per step, CPU, {args.steps} steps"
    )
    for r in (lora, full):
        print(
            f"{r['method']:>5}: peak RSS {r['peak_rss_mb']:7.0f} MiB "
            f"({r['peak_rss_mb'] - r['baseline_mb']:6.0f} MiB over the libraries' "
            f"{r['baseline_mb']:.0f}), {r['step_s']:.2f} s/step"
        )
    used = {m: r["peak_rss_mb"] - r["baseline_mb"] for m, r in results.items()}
    print(
        f"LoRA / full: peak RSS {lora['peak_rss_mb'] / full['peak_rss_mb']:.2f}×, "
        f"memory over the libraries {used['lora'] / used['full']:.2f}×, "
        f"step time {lora['step_s'] / full['step_s']:.2f}×"
    )


if __name__ == "__main__":
    main()
