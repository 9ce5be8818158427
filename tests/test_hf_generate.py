"""The in-process sampler: one prefill per prompt, forked caches, seeded and streamable."""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ccapp.engines.hf_generate import Cancelled, HFGenerator, Prompt, Sampling

REQUESTS = [
    "How do I bake bread?",
    "What is the best way to save money quickly and safely?",
    "Why?",
]


@pytest.fixture(scope="module")
def lively(tiny_model_dir: Path) -> tuple[Any, Any]:
    """The tiny tokenizer with larger random weights, so greedy outputs differ per prompt."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = LlamaConfig.from_pretrained(tiny_model_dir)
    config.initializer_range = 0.3
    torch.manual_seed(3)
    return LlamaForCausalLM(config).eval(), tokenizer


def prompts(tokenizer: Any, paths: int) -> list[Prompt]:
    out = []
    for i, request in enumerate(REQUESTS):
        text = tokenizer.apply_chat_template(
            [
                {"role": "user", "content": request},
                {"role": "assistant", "content": "Sure, I can help you with that. First,"},
            ],
            tokenize=False,
            continue_final_message=True,
        )
        out.append(
            Prompt(i, tokenizer(text, add_special_tokens=False)["input_ids"], tuple(range(paths)))
        )
    return out


def test_padded_batched_greedy_equals_one_prompt_at_a_time_generate(
    lively: tuple[Any, Any],
) -> None:
    import torch

    model, tokenizer = lively
    batch = prompts(tokenizer, 1)
    assert len({len(p.ids) for p in batch}) == 3  # really padded
    ours = HFGenerator(model, tokenizer).generate(batch, Sampling(12, 0.0, 1.0), seed=0)
    texts = set()
    for prompt, got in zip(batch, ours):
        reference = model.generate(
            torch.tensor([list(prompt.ids)]),
            max_new_tokens=12,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        expected = tokenizer.decode(reference[0, len(prompt.ids) :], skip_special_tokens=True)
        assert got.text == expected
        texts.add(got.text)
    assert len(texts) == 3


def test_forked_paths_are_the_same_as_repeating_the_prompt(lively: tuple[Any, Any]) -> None:
    model, tokenizer = lively
    generator = HFGenerator(model, tokenizer)
    forked = generator.generate(prompts(tokenizer, 4), Sampling(10, 0.8, 0.9), seed=11)
    repeated_prompts = [
        Prompt(p.key * 4 + path, p.ids, (0,)) for p in prompts(tokenizer, 1) for path in range(4)
    ]
    repeated = generator.generate(repeated_prompts, Sampling(10, 0.8, 0.9), seed=11)
    assert [g.text for g in forked] == [g.text for g in repeated]
    assert len({g.text for g in forked}) > 3  # the paths really differ


def test_the_same_seed_samples_the_same_paths_and_another_seed_does_not(
    lively: tuple[Any, Any],
) -> None:
    model, tokenizer = lively
    generator = HFGenerator(model, tokenizer)
    batch = prompts(tokenizer, 3)
    first = generator.generate(batch, Sampling(16), seed=5)
    assert first == generator.generate(batch, Sampling(16), seed=5)
    assert [g.text for g in first] != [
        g.text for g in generator.generate(batch, Sampling(16), seed=6)
    ]
    assert [(g.key, g.path) for g in first] == [(k, p) for k in range(3) for p in range(3)]


def test_streamed_deltas_add_up_to_the_final_texts(lively: tuple[Any, Any]) -> None:
    model, tokenizer = lively
    streamed: dict[tuple[int, int], str] = defaultdict(str)

    def collect(deltas: list[tuple[int, int, str]]) -> None:
        for key, path, text in deltas:
            streamed[(key, path)] += text

    final = HFGenerator(model, tokenizer).generate(
        prompts(tokenizer, 2), Sampling(20), seed=1, on_step=collect
    )
    assert {(g.key, g.path): g.text for g in final} == dict(streamed)


def test_a_row_stops_at_its_stop_token(lively: tuple[Any, Any]) -> None:
    model, tokenizer = lively
    generator = HFGenerator(model, tokenizer)
    batch = prompts(tokenizer, 1)
    free = generator.generate(batch, Sampling(8, 0.0, 1.0), seed=0)
    assert all(g.finish_reason == "length" and g.new_tokens == 8 for g in free)
    # Make the third greedy token of the first prompt a stop token.
    third = tokenizer(free[0].text, add_special_tokens=False)["input_ids"]
    generator.stop_ids = generator.stop_ids | {third[2]}
    stopped = generator.generate(batch, Sampling(8, 0.0, 1.0), seed=0)
    assert stopped[0].finish_reason == "eos" and stopped[0].new_tokens <= 2
    assert free[0].text.startswith(stopped[0].text)


def test_cancel_stops_between_steps(lively: tuple[Any, Any]) -> None:
    model, tokenizer = lively
    cancel = threading.Event()

    def cancel_after_first(deltas: list[tuple[int, int, str]]) -> None:
        cancel.set()

    with pytest.raises(Cancelled):
        HFGenerator(model, tokenizer).generate(
            prompts(tokenizer, 2), Sampling(30), seed=0, on_step=cancel_after_first, cancel=cancel
        )


@pytest.mark.parametrize(("temperature", "top_p"), [(0.8, 0.7), (1.0, 0.3), (0.5, 1.0)])
def test_sampling_follows_the_renormalised_nucleus_exactly(
    temperature: float, top_p: float
) -> None:
    import torch

    from ccapp.engines.hf_generate import sample_nucleus

    torch.manual_seed(0)
    logits = torch.randn(40) * 2
    probs = torch.softmax(logits / temperature, dim=-1)
    ranked, order = torch.sort(probs, descending=True)
    keep = (ranked.cumsum(0) - ranked) < top_p  # TopPLogitsWarper's nucleus
    expected = torch.zeros_like(probs)
    expected[order[keep]] = ranked[keep] / ranked[keep].sum()

    draws = 40_000
    generator = torch.Generator().manual_seed(1)
    samples = sample_nucleus(logits.repeat(draws, 1), temperature, top_p, generator)
    observed = torch.bincount(samples, minlength=40).float() / draws
    assert observed[expected == 0].sum() == 0  # never outside the nucleus
    assert (observed - expected).abs().max() < 0.012
