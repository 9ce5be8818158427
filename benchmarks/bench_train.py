"""DPO memory and step time: LoRA (reference = the base with the adapter off) vs full DPO
(with a reference copy), on the same ~70M-parameter random Llama and the same pairs, both
through ccapp's training engine (`ccapp train`'s code path).

Each method runs in its own child process, so that each peak RSS is its own.

    python benchmarks/bench_train.py [--steps 6] [--hidden 640] [--layers 10]
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
from ccapp.engines.train import TrainConfig, Training
from ccapp.store import Store

model_dir, method, steps, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


class Rate:
    # the engine's own steps/s, measured from the first step: loading is excluded
    rate = 0.0

    def emit(self, event, **fields):
        if event == "progress" and fields.get("rate"):
            self.rate = fields["rate"]

    def tokens(self, deltas):
        pass

    def close(self):
        pass


sink = Rate()
with Store.open(f"{work}/{method}.db") as store:
    run = Training(store, sink).start(TrainConfig(
        pairs=f"{work}/pairs", model=model_dir, method=method, lr=1e-5, batch_size=4,
        max_length=256, max_steps=steps, output=f"{work}/{method}", device="cpu",
        save_steps=10**6,
    ))
print(json.dumps({"method": method, "step_s": 1 / sink.rate, "status": run.status.value,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "params_m": run.metrics["params"] / 1e6}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=640)
    parser.add_argument("--layers", type=int, default=10)
    args = parser.parse_args()
    from ccapp.engines.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(
            Path(tmp) / "model", layers=min(args.layers, 8), hidden=512, warmup_steps=0
        )
        if (
            args.layers > 8 or args.hidden != 512
        ):  # larger than the tiny builder's limits: widen the config
            from transformers import AutoModelForCausalLM, LlamaConfig

            config = LlamaConfig.from_pretrained(model_dir)
            config.hidden_size, config.intermediate_size = args.hidden, args.hidden * 4
            config.num_hidden_layers = args.layers
            config.num_attention_heads = config.num_key_value_heads = 10
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
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    lora, full = results["lora"], results["full"]
    print(
        f"model: {full['params_m']:.0f}M parameters, batch 4 pairs × 256 tokens, CPU, {args.steps} steps"
    )
    for r in (lora, full):
        print(f"{r['method']:>5}: peak RSS {r['peak_rss_mb']:7.0f} MiB, {r['step_s']:.2f} s/step")
    print(
        f"LoRA / full: memory {lora['peak_rss_mb'] / full['peak_rss_mb']:.2f}×, "
        f"step time {lora['step_s'] / full['step_s']:.2f}×"
    )


if __name__ == "__main__":
    main()
