"""`--eval-fraction F`: the pairs split into training and held-out eval pairs by request.

The 15 pairs of one C2-Syn group share their request (the prompt) and most of their texts,
so a split by pair would put near-copies of eval pairs in training and flatter the eval loss.
Whole requests are held out instead: the prompts are hashed (a stable digest, not Python's
salted `hash`), a seeded draw picks round(F × requests) of them (at least one, and never all),
and every pair of a drawn request goes to eval. The same pairs and seed give the same split,
which a resumed run relies on.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from ccapp.errors import UserError

BATCH = 10_000  # prompts read at a time: a 750K-pair run is never held in Python objects whole


@dataclass(frozen=True)
class Split:
    """Training pairs, and eval pairs (None without an eval split)."""

    train: Any  # datasets.Dataset
    eval: Any | None
    requests: int  # distinct requests in all the pairs (0 when not counted: no split)
    eval_requests: int

    def trainer_datasets(self) -> dict[str, Any]:
        """DPOTrainer's `train_dataset` and `eval_dataset`."""
        return {"train_dataset": self.train, "eval_dataset": self.eval}

    def totals(self) -> dict[str, int]:
        """What the run_started event says of the split."""
        if self.eval is None:
            return {"pairs": self.train.num_rows}
        return {
            "pairs": self.train.num_rows,
            "eval_pairs": self.eval.num_rows,
            "eval_requests": self.eval_requests,
        }


def split_pairs(dataset: Any, fraction: float, seed: int) -> Split:
    """Hold out `fraction` of the requests with all their pairs (see the module docstring)."""
    if fraction <= 0:
        return Split(dataset, None, 0, 0)
    keys = [
        _request_key(prompt)
        for batch in dataset.select_columns(["prompt"]).iter(batch_size=BATCH)
        for prompt in batch["prompt"]
    ]
    requests = sorted(set(keys))
    if len(requests) < 2:
        raise UserError(
            f"the pairs hold {len(requests)} request(s): an eval split needs at least 2",
            where="--eval-fraction",
            fix="train on pairs of more requests, or give --eval-fraction 0",
        )
    held = min(len(requests) - 1, max(1, round(fraction * len(requests))))
    chosen = set(random.Random(seed).sample(requests, held))
    train = [i for i, key in enumerate(keys) if key not in chosen]
    held_out = [i for i, key in enumerate(keys) if key in chosen]
    return Split(dataset.select(train), dataset.select(held_out), len(requests), held)


def _request_key(prompt: Any) -> bytes:
    """A stable digest of a pair's prompt (text or chat messages)."""
    text = json.dumps(prompt, sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()
