"""In-process sampling with transformers: each prompt is prefilled once, its KV cache forked.

`model.generate(num_return_sequences=b)` runs the prompt's forward pass b times. Here each
prompt of a batch is prefilled once, then the cache rows are copied (`reorder_cache` with
repeated indices) so its b continuation paths start from the same cache — for C2-Eval's
150-token prompts and 32 new tokens that removes most of the compute.

The decode loop is ours (≈40 lines) because it needs what `generate` does not give: per-row
fork counts, explicit position ids for left padding, a seeded generator per batch (so a
resumed run re-samples a batch exactly), cancellation between steps and streaming of
every row's text. Sampling draws from exactly the distribution `generate` samples from
(temperature, then the top-p nucleus as transformers' TopPLogitsWarper defines it), but
by rejection sampling instead of sorting the vocabulary (see `sample_nucleus`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prompt:
    """One rendered prompt and the path numbers to sample from it."""

    key: int  # the caller's id for the prompt (a C2-Eval cell)
    ids: Sequence[int]
    paths: Sequence[int]


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 32
    temperature: float = 0.8  # 0 means greedy
    top_p: float = 0.7


@dataclass(frozen=True)
class Generated:
    key: int
    path: int
    text: str
    new_tokens: int  # generated tokens before the stop token
    finish_reason: str  # "eos" or "length"


StepCallback = Callable[[list[tuple[int, int, str]]], None]  # [(key, path, text delta)]


class Cancelled(Exception):
    """Raised between decode steps when the cancel event is set; nothing is returned."""


class HFGenerator:
    def __init__(self, model: Any, tokenizer: Any):
        self.model = model
        self.tokenizer = tokenizer
        self.stop_ids = _stop_token_ids(model, tokenizer)
        self.static_cache = True  # turned off for models whose config a StaticCache refuses
        self.pad_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.stop_ids)
        )

    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: Sampling,
        seed: int,
        *,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generated]:
        import torch

        device = next(self.model.parameters()).device
        width = max(len(p.ids) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding
            input_ids[row, width - len(prompt.ids) :] = torch.tensor(list(prompt.ids))
            mask[row, width - len(prompt.ids) :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        counts = torch.tensor([len(p.paths) for p in prompts], device=device)
        fork = torch.repeat_interleave(torch.arange(len(prompts), device=device), counts)
        rows = [(p.key, path) for p in prompts for path in p.paths]

        generator = torch.Generator(device=device).manual_seed(seed)
        stop = torch.tensor(sorted(self.stop_ids), device=device)

        with torch.inference_mode():
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            cache = self._new_cache(width + sampling.max_new_tokens)
            extra = (
                {"cache": cache, "cache_position": torch.arange(width, device=device)}
                if cache
                else {}
            )
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **extra,  # only the last position's logits are needed
            )
            cache = out.cache
            cache.reorder_cache(fork)  # the fork: one prefill, len(paths) rows each
            logits = out.logits[:, -1, :].float().index_select(0, fork)
            full_mask = torch.ones(
                (len(rows), width + sampling.max_new_tokens), dtype=torch.long, device=device
            )
            full_mask[:, :width] = mask.index_select(0, fork)
            next_position = positions[:, -1:].index_select(0, fork) + 1
            del out

            tokens = torch.full(
                (len(rows), sampling.max_new_tokens), self.pad_id, dtype=torch.long, device=device
            )
            finished = torch.zeros(len(rows), dtype=torch.bool, device=device)
            lengths = torch.full((len(rows),), sampling.max_new_tokens, device=device)
            shown = [""] * len(rows)
            for step in range(sampling.max_new_tokens):
                if cancel is not None and cancel.is_set():
                    raise Cancelled
                if sampling.temperature > 0:
                    chosen = sample_nucleus(logits, sampling.temperature, sampling.top_p, generator)
                else:
                    chosen = logits.argmax(dim=-1)
                chosen = torch.where(finished, torch.full_like(chosen, self.pad_id), chosen)
                just_stopped = ~finished & torch.isin(chosen, stop)
                lengths = torch.where(just_stopped, torch.full_like(lengths, step), lengths)
                finished |= just_stopped
                tokens[:, step] = chosen
                if on_step is not None:
                    shown = self._stream(rows, tokens[:, : step + 1], lengths, shown, on_step)
                if bool(finished.all()) or step == sampling.max_new_tokens - 1:
                    break
                if self.static_cache:
                    extra = {"cache_position": torch.tensor([width + step], device=device)}
                out = self.model(
                    input_ids=chosen[:, None],
                    attention_mask=full_mask[:, : width + step + 1],
                    position_ids=next_position,
                    cache=cache,
                    use_cache=True,
                    **extra,
                )
                cache = out.cache
                logits = out.logits[:, -1, :].float()
                next_position = next_position + 1

        tokens_cpu, lengths_cpu, finished_cpu = tokens.cpu(), lengths.cpu(), finished.cpu()
        results = []
        for row, (key, path) in enumerate(rows):
            n = int(lengths_cpu[row])
            text = self.tokenizer.decode(tokens_cpu[row, :n].tolist(), skip_special_tokens=True)
            reason = "eos" if bool(finished_cpu[row]) else "length"
            results.append(Generated(key, path, text, n, reason))
        if on_step is not None:  # what the stream held back (a trailing partial character)
            rest = [
                (r.key, r.path, r.text[len(shown[i]) :])
                for i, r in enumerate(results)
                if r.text != shown[i] and r.text.startswith(shown[i])
            ]
            if rest:
                on_step(rest)
        return results

    def _new_cache(self, length: int) -> Any:
        """A preallocated KV cache when the model takes one: a growing cache copies itself
        at every step (quadratic in length), a static one is written in place."""
        if not self.static_cache:
            return None
        from transformers import StaticCache

        try:
            return StaticCache(config=self.model.config, max_cache_len=length)
        except (TypeError, ValueError, NotImplementedError, AttributeError):
            self.static_cache = False
            return None

    def _stream(
        self,
        rows: list[tuple[int, int]],
        tokens: Any,
        lengths: Any,
        shown: list[str],
        on_step: StepCallback,
    ) -> list[str]:
        """Report each row's new text, holding back an unfinished multi-byte character."""
        step = tokens.shape[1]
        ids = tokens.cpu().tolist()
        limits = lengths.cpu().tolist()
        texts = self.tokenizer.batch_decode(
            [row_ids[: min(step, int(limit))] for row_ids, limit in zip(ids, limits)],
            skip_special_tokens=True,
        )
        deltas = []
        updated = list(shown)
        for row, text in enumerate(texts):
            stable = text.rstrip("\ufffd")
            if stable != shown[row] and stable.startswith(shown[row]):
                deltas.append((rows[row][0], rows[row][1], stable[len(shown[row]) :]))
                updated[row] = stable
        if deltas:
            on_step(deltas)
        return updated


MAX_DRAWS = 32


def sample_nucleus(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    """One token per row from softmax(logits / T) restricted to the top-p nucleus.

    The nucleus is the tokens whose more probable tokens hold less than top_p of the mass
    (TopPLogitsWarper's rule; the top token always qualifies). Instead of sorting the
    vocabulary, a token is drawn from the whole distribution by inverse CDF and kept if it
    is in the nucleus, else drawn again: rejection sampling, so the result follows the
    renormalised nucleus exactly, and since the nucleus holds at least top_p of the mass, a
    row needs 1/top_p draws on average. Rows still unlucky after MAX_DRAWS use a sort.
    """
    import torch

    probs = torch.softmax(logits / temperature, dim=-1)
    cumulative = probs.cumsum(dim=-1)
    rows, vocab = probs.shape
    chosen = torch.zeros(rows, dtype=torch.long, device=probs.device)
    pending = torch.arange(rows, device=probs.device)
    for _ in range(MAX_DRAWS):
        cum = cumulative.index_select(0, pending)
        draw = torch.rand((len(pending), 1), generator=generator, device=probs.device) * cum[:, -1:]
        candidate = torch.searchsorted(cum, draw, right=True).clamp(max=vocab - 1)
        if top_p >= 1.0:
            chosen[pending] = candidate.squeeze(1)
            return chosen
        p = probs.index_select(0, pending)
        p_candidate = p.gather(1, candidate)
        above = (p * (p > p_candidate)).sum(dim=-1)
        accepted = above < top_p
        chosen[pending[accepted]] = candidate.squeeze(1)[accepted]
        pending = pending[~accepted]
        if len(pending) == 0:
            return chosen
    ranked, order = torch.sort(probs.index_select(0, pending), dim=-1, descending=True)
    ranked = ranked * ((ranked.cumsum(dim=-1) - ranked) < top_p)
    cum = ranked.cumsum(dim=-1)
    draw = torch.rand((len(pending), 1), generator=generator, device=probs.device) * cum[:, -1:]
    position = torch.searchsorted(cum, draw, right=True).clamp(max=vocab - 1)
    chosen[pending] = order.gather(1, position).squeeze(1)
    return chosen


def _stop_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """EOS ids from the generation config (Llama-3 has two) and the tokenizer."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError("the model has no end-of-sequence token")
    return ids
