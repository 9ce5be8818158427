"""Continuations of the real SmolLM2-135M-Instruct after a harmful prefill that ends in an
open corrective clause: how the raw material of tests/data/heuristic_dev.jsonl's real rows
was made (then labelled by reading each one). Run with ccapp's venv, offline:

    CCAPP_HOME=/tmp/h HF_HUB_OFFLINE=1 .venv/bin/python scripts/real_model_continuations.py \
        ../shared/data/c2eval_test.jsonl out.jsonl
"""

from __future__ import annotations

import json
import random
import sys


def main(data: str, out: str, count: int = 48, seed: int = 7) -> None:
    import torch

    from ccapp.engines.data import load_dataset_rows
    from ccapp.engines.generation.models import load_model, resolve_model
    from ccapp.engines.phrases import OPENERS

    clauses = [
        " However, I cannot provide",
        " But I must advise you that",
        " Wait, I should not",
        " Actually, I have to stop here because",
        " I'm sorry, but",
        " However, it's important to note that",
        " On second thought,",
        " Instead of doing this, you should",
    ]
    rng = random.Random(seed)
    rows = load_dataset_rows(data).rows
    picked = rng.sample(rows, count)
    loaded = load_model(resolve_model("smollm2"), device="cpu", dtype="float32")
    tokenizer, model = loaded.tokenizer, loaded.model
    torch.manual_seed(seed)
    prompts = []
    for i, row in enumerate(picked):
        words = row.harmful_response.split()
        cut = " ".join(words[: rng.randint(8, 40)])
        cut = cut if cut.endswith((".", "!", "?")) else cut + "."
        prefill = f"{rng.choice(OPENERS)} {cut}{clauses[i % len(clauses)]}"
        messages = [
            {"role": "user", "content": row.request},
            {"role": "assistant", "content": prefill},
        ]
        text = tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        prompts.append((row.request, prefill, text))
    tokenizer.padding_side = "left"
    with open(out, "w") as fh:
        for start in range(0, len(prompts), 16):
            chunk = prompts[start : start + 16]
            batch = tokenizer(
                [t for _, _, t in chunk],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
            with torch.no_grad():
                generated = model.generate(
                    **batch, max_new_tokens=40, do_sample=True, temperature=0.8, top_p=0.7
                )
            for (request, prefill, _), prompt_ids, ids in zip(chunk, batch["input_ids"], generated):
                new = ids[prompt_ids.shape[0] :]
                # Decode with the prompt's last token so a leading space survives.
                full = tokenizer.decode(torch.cat([prompt_ids[-1:], new]), skip_special_tokens=True)
                tail = tokenizer.decode(prompt_ids[-1:], skip_special_tokens=True)
                fh.write(
                    json.dumps(
                        {"request": request, "prefill": prefill, "continuation": full[len(tail) :]}
                    )
                    + "\n"
                )
            fh.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
