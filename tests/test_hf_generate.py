"""The in-process sampler: one prefill per prompt, forked caches, seeded and streamable."""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from ccapp.engines.generation.hf_generate import HFGenerator
from ccapp.engines.generation.types import Cancelled, Prompt, Sampling

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

    from ccapp.engines.generation.hf_generate import sample_nucleus

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


# --- decoding: a continuation keeps the space that starts its first word ------------------


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_gguf: Path) -> Any:
    """The real SmolLM2-135M-Instruct tokenizer (byte-level BPE), read from its GGUF."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_gguf.parent, gguf_file=smollm2_gguf.name)


def sentencepiece_model(seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers import sentencepiece_tokenizer

    tokenizer = sentencepiece_tokenizer("llama2")
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        initializer_range=0.3,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return LlamaForCausalLM(config).eval(), tokenizer


SYN_TEXT = "Sure, here is how. First, do it. However, I cannot continue with this. If you need help"


@pytest.mark.parametrize("which", ["sentencepiece", "smollm2"])
def test_a_continuation_decodes_to_what_follows_the_prompt_in_the_full_text(
    which: str, smollm2_tokenizer: Any
) -> None:
    """SYN text read "…continue with this.If you need help": the "▁" was dropped."""
    from ccapp.engines.generation.hf_generate import ContinuationDecoder

    from helpers import sentencepiece_tokenizer

    tokenizer = sentencepiece_tokenizer("llama2") if which == "sentencepiece" else smollm2_tokenizer
    ids = tokenizer(SYN_TEXT, add_special_tokens=False)["input_ids"]
    cuts = [
        i
        for i in range(1, len(ids))
        if tokenizer.decode(ids[:i]) + tokenizer.decode(ids[i:]) != SYN_TEXT
    ]
    if which == "sentencepiece":
        assert cuts  # the stand-in really is lossy when decoded piecewise
    for cut in range(1, len(ids)):
        (text,) = ContinuationDecoder(tokenizer, [ids[:cut]]).decode([ids[cut:]])
        assert tokenizer.decode(ids[:cut]) + text == SYN_TEXT
    this = SYN_TEXT.index(" If you")
    cut = next(i for i in range(len(ids)) if len(tokenizer.decode(ids[:i])) >= this)
    (text,) = ContinuationDecoder(tokenizer, [ids[:cut]]).decode([ids[cut:]])
    assert text == " If you need help"


def test_sentencepiece_continuations_keep_their_leading_space_as_generate_decodes_them() -> None:
    """Greedy paths of a Llama-2-style model equal `generate` decoded as one text."""
    import torch

    model, tokenizer = sentencepiece_model(seed=1)
    refusal = tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "Tell me."},
            {"role": "assistant", "content": "However, I cannot continue with this."},
        ],
        tokenize=False,
        continue_final_message=True,
    )
    batch = [
        *prompts(tokenizer, 1),
        Prompt(9, tokenizer(refusal, add_special_tokens=False)["input_ids"], (0,)),
    ]
    streamed: dict[int, str] = defaultdict(str)

    def collect(deltas: list[tuple[int, int, str]]) -> None:
        for key, _path, text in deltas:
            streamed[key] += text

    ours = HFGenerator(model, tokenizer).generate(
        batch, Sampling(8, 0.0, 1.0), seed=0, on_step=collect
    )
    starts_a_word = 0
    for prompt, got in zip(batch, ours):
        reference = model.generate(
            torch.tensor([list(prompt.ids)]), max_new_tokens=8, do_sample=False
        )[0].tolist()
        whole = tokenizer.decode(reference, skip_special_tokens=True)
        head = tokenizer.decode(list(prompt.ids), skip_special_tokens=True)
        assert got.text == whole[len(head) :]
        assert streamed[prompt.key] == got.text
        starts_a_word += got.text.startswith(" ")
    assert starts_a_word >= 1  # the case the bug lost


# --- top-k and repetition penalty, as transformers' processors apply them ----------------


def transformers_scores(logits: Any, ids: Any, sampling: Sampling, *, top_p: bool) -> Any:
    """The scores `generate` samples from, by transformers' own processors, in its order."""
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    scores = RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty)(ids, logits.clone())
    scores = TemperatureLogitsWarper(sampling.temperature)(ids, scores)
    scores = TopKLogitsWarper(sampling.top_k)(ids, scores)
    return TopPLogitsWarper(sampling.top_p)(ids, scores) if top_p else scores


def test_top_k_and_repetition_penalty_give_transformers_scores_ties_included() -> None:
    import torch

    from ccapp.engines.generation.hf_generate import warp_logits

    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 3
    logits[0] = logits[0].clamp(max=2.0)
    logits[0, :8] = 2.5  # a tie across the k-th score: all tied tokens stay
    logits[1, 3] = -1.0  # a negative score of a seen token is multiplied, not divided
    ids = torch.randint(0, 50, (6, 12))
    ids[0] = torch.randint(8, 50, (12,))  # none of the tied tokens is penalised
    ids[1, 0] = 3
    seen = torch.zeros(6, 50, dtype=torch.bool).scatter_(1, ids, True)
    sampling = Sampling(8, 0.7, 1.0, top_k=5, repetition_penalty=1.3)
    ours = warp_logits(logits.clone(), sampling, seen)
    theirs = transformers_scores(logits, ids, sampling, top_p=False)
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    assert torch.allclose(ours[~torch.isinf(ours)], theirs[~torch.isinf(theirs)])
    assert int((~torch.isinf(ours[0])).sum()) == 8  # the tie kept more than k


@pytest.mark.parametrize(
    ("top_k", "top_p", "tied"), [(5, 1.0, False), (12, 0.7, False), (3, 0.3, False), (4, 0.9, True)]
)
def test_sampling_with_top_k_follows_transformers_distribution(
    top_k: int, top_p: float, tied: bool
) -> None:
    """The engine's draw (top-k scores only; ties past k on the full path) is generate's."""
    import torch

    from ccapp.engines.generation.hf_generate import choose_tokens

    torch.manual_seed(2)
    logits = torch.randn(1, 40) * 2
    if tied:  # four tokens tie with the 4th best score: TopKLogitsWarper keeps all of them
        best = torch.argsort(logits[0], descending=True)
        logits[0, best[3:7]] = float(logits[0, best[3]])
    ids = torch.tensor([[1, 4, 4, 9]])
    seen = torch.zeros(1, 40, dtype=torch.bool).scatter_(1, ids, True)
    sampling = Sampling(8, 0.8, top_p, top_k=top_k, repetition_penalty=1.2)
    expected = torch.softmax(transformers_scores(logits, ids, sampling, top_p=True)[0], dim=-1)
    draws = 40_000
    samples = choose_tokens(
        logits.repeat(draws, 1), sampling, seen.repeat(draws, 1), torch.Generator().manual_seed(1)
    )
    if tied:
        assert int((expected > 0).sum()) > top_k  # the tie really spilled past k
    observed = torch.bincount(samples, minlength=40).float() / draws
    assert observed[expected == 0].sum() == 0
    assert (observed - expected).abs().max() < 0.012


def test_greedy_with_a_repetition_penalty_equals_generate_despite_left_padding(
    lively: tuple[Any, Any],
) -> None:
    """`generate` penalises the prompt's tokens too, and (transformers 5) not the padding."""
    import torch

    model, tokenizer = lively
    batch = prompts(tokenizer, 1)
    penalised = HFGenerator(model, tokenizer).generate(
        batch, Sampling(12, 0.0, 1.0, repetition_penalty=1.8), seed=0
    )
    plain = HFGenerator(model, tokenizer).generate(batch, Sampling(12, 0.0, 1.0), seed=0)
    assert [g.text for g in penalised] != [g.text for g in plain]
    for prompt, got in zip(batch, penalised):
        reference = model.generate(
            torch.tensor([list(prompt.ids)]),
            max_new_tokens=12,
            do_sample=False,
            repetition_penalty=1.8,
            pad_token_id=tokenizer.pad_token_id,
        )
        assert got.text == tokenizer.decode(
            reference[0, len(prompt.ids) :], skip_special_tokens=True
        )
