"""Cascade attention computes the same attention as a forked KV cache, architecture by architecture.

Each prompt's keys and values are kept once and every path attends to them plus its own
tokens (ccapp.engines.generation.forked_attention). These tests feed the same tokens to both decoders
and compare the logits of every step, on small random models of each architecture the
cascade accepts, with GQA, left padding and uneven path counts per prompt.
"""

from __future__ import annotations

from typing import Any

import pytest

from ccapp.engines.generation import forked_attention
from ccapp.engines.generation.hf_generate import HFGenerator
from ccapp.engines.generation.types import Prompt, Sampling


def random_model(model_type: str) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    extra: dict[str, Any] = {}
    if model_type == "mistral":
        extra["sliding_window"] = 4096
    config = AutoConfig.for_model(
        model_type,
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention: 2 query heads per KV head
        head_dim=16,
        max_position_embeddings=512,
        initializer_range=0.2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        **extra,
    )
    return AutoModelForCausalLM.from_config(config).eval()


class Ids:
    """A stand-in tokenizer: the decoder under test only needs ids and a pad id."""

    pad_token_id = 0
    eos_token_id = 2

    def batch_decode(self, rows: Any, skip_special_tokens: bool = True) -> list[str]:
        return [" ".join(map(str, row)) for row in rows]

    def decode(self, row: Any, skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, row))


PROMPTS = [  # uneven lengths (left padding) and uneven path counts (3, 1, 2)
    Prompt(0, [5, 17, 33, 8, 91, 12, 40], (0, 1, 2)),
    Prompt(1, [7, 7, 250, 3], (0,)),
    Prompt(2, [11, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69], (0, 1)),
]


def step_logits(generator: HFGenerator, steps: int) -> list[Any]:
    """The logits of each decode step when every row is fed the same fixed tokens."""
    import torch

    width = max(len(p.ids) for p in PROMPTS)
    ids = torch.zeros((len(PROMPTS), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(PROMPTS):
        ids[row, width - len(prompt.ids) :] = torch.tensor(prompt.ids)
        mask[row, width - len(prompt.ids) :] = 1
    counts = torch.tensor([len(p.paths) for p in PROMPTS])
    fork = torch.repeat_interleave(torch.arange(len(PROMPTS)), counts)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        forward = generator._forward_steps(
            PROMPTS, ids, mask, positions, fork, Sampling(max_new_tokens=steps)
        )
        logits = [next(forward)]
        for step in range(steps - 1):
            fed = (torch.arange(len(fork)) * 7 + step * 13) % 250 + 3
            logits.append(forward.send(fed))
    return logits


@pytest.mark.parametrize("model_type", sorted(forked_attention.ARCHITECTURES))
def test_cascade_logits_equal_the_forked_cache_at_every_step(model_type: str) -> None:
    import torch

    model = random_model(model_type)
    cascade = HFGenerator(model, Ids())
    assert cascade._cascade(64), f"{model_type} should decode with the cascade"
    copied = HFGenerator(model, Ids())
    copied.cascade = False
    ours, reference = step_logits(cascade, 6), step_logits(copied, 6)
    for step, (a, b) in enumerate(zip(ours, reference)):
        assert a.shape == b.shape == (6, 300)
        assert torch.allclose(a, b, atol=2e-5, rtol=1e-4), (model_type, step, (a - b).abs().max())


def test_greedy_continuations_are_the_same_with_and_without_the_cascade() -> None:
    model = random_model("llama")
    cascade, copied = HFGenerator(model, Ids()), HFGenerator(model, Ids())
    copied.cascade = False
    greedy = Sampling(max_new_tokens=12, temperature=0.0)
    assert cascade.generate(PROMPTS, greedy, seed=0) == copied.generate(PROMPTS, greedy, seed=0)


def test_a_model_the_cascade_does_not_fit_keeps_the_forked_cache() -> None:
    model = random_model("llama")
    model.config.model_type = "gemma2"  # soft-capped, sliding-window layers: not plain attention
    generator = HFGenerator(model, Ids())
    assert not generator._cascade(64)
    assert model.config._attn_implementation != forked_attention.NAME


def test_a_sliding_window_narrower_than_the_sequence_keeps_the_forked_cache() -> None:
    model = random_model("mistral")
    model.config.sliding_window = 16
    generator = HFGenerator(model, Ids())
    assert generator._cascade(16) and not generator._cascade(17)
