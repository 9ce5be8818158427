"""In-process sampling with transformers: each prompt is prefilled once, its paths forked.

`model.generate(num_return_sequences=b)` runs the prompt's forward pass b times. Here each
prompt of a batch is prefilled once and its b continuation paths start from that one
prefill — for C2-Eval's 150-token prompts and 32 new tokens that removes most of the
compute. On a CPU the prompt's keys and values are then kept once and shared by its paths
through cascade attention (ccapp.engines.generation.forked_attention: at b = 20 attention no longer
reads 20 copies of each prompt); elsewhere, and for architectures the cascade does not
cover, the cache rows are copied per path (`reorder_cache` with repeated indices).

The decode loop is ours (≈40 lines) because it needs what `generate` does not give: per-row
fork counts, explicit position ids for left padding, a seeded generator per batch (so a
resumed run re-samples a batch exactly), cancellation between steps and streaming of
every row's text. Sampling draws from the distribution `generate` samples from: the
repetition penalty, temperature, top-k and top-p applied in transformers' order and as its
RepetitionPenaltyLogitsProcessor, TopKLogitsWarper and TopPLogitsWarper define them, but
the nucleus is found by rejection sampling instead of sorting the vocabulary (see
`sample_nucleus`; the one difference is at exact ties, documented there). The settings
themselves are resolved once per run (ccapp.engines.generation.sampling), so that the model's
`generation_config` applies here as it does in `generate` and on a vLLM server.

A continuation is decoded together with the last prompt tokens and the prompt's text is
then cut off (`ContinuationDecoder`): SentencePiece decoders (Llama-2, Vicuna, Zephyr,
Phi-3) drop the "▁" of the first token decoded, so decoding the new tokens alone loses
the space that starts a new word ("…this.If you need help"). Servers such as vLLM decode
with the prompt as context too, so both engines give the same text for the same tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from typing import Any

from ccapp.engines.generation.types import Cancelled, Generated, Prompt, Sampling, StepCallback


class HFGenerator:
    def __init__(self, model: Any, tokenizer: Any):
        self.model = model
        self.tokenizer = tokenizer
        self.stop_ids = _stop_token_ids(model, tokenizer)
        self.static_cache = True  # turned off for models whose config a StaticCache refuses
        self.cascade: bool | None = (
            None  # decided on first use (ccapp.engines.generation.forked_attention)
        )
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
        decoder = ContinuationDecoder(self.tokenizer, [p.ids for p in prompts for _ in p.paths])

        generator = torch.Generator(device=device).manual_seed(seed)
        stop = torch.tensor(sorted(self.stop_ids), device=device)

        with torch.inference_mode():
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            forward = self._forward_steps(prompts, input_ids, mask, positions, fork, sampling)
            logits = next(forward)
            seen = (
                _seen_tokens(prompts, logits.shape[-1], device).index_select(0, fork)
                if sampling.repetition_penalty != 1.0
                else None
            )

            tokens = torch.full(
                (len(rows), sampling.max_new_tokens), self.pad_id, dtype=torch.long, device=device
            )
            finished = torch.zeros(len(rows), dtype=torch.bool, device=device)
            lengths = torch.full((len(rows),), sampling.max_new_tokens, device=device)
            shown = [""] * len(rows)
            for step in range(sampling.max_new_tokens):
                if cancel is not None and cancel.is_set():
                    raise Cancelled
                chosen = choose_tokens(logits, sampling, seen, generator)
                chosen = torch.where(finished, torch.full_like(chosen, self.pad_id), chosen)
                if seen is not None:
                    seen.scatter_(1, chosen[:, None], True)
                just_stopped = ~finished & torch.isin(chosen, stop)
                lengths = torch.where(just_stopped, torch.full_like(lengths, step), lengths)
                finished |= just_stopped
                tokens[:, step] = chosen
                if on_step is not None:
                    shown = self._stream(
                        rows, decoder, tokens[:, : step + 1], lengths, shown, on_step
                    )
                if bool(finished.all()) or step == sampling.max_new_tokens - 1:
                    break
                logits = forward.send(chosen)

        token_rows, lengths_cpu, finished_cpu = tokens.tolist(), lengths.tolist(), finished.tolist()
        counts_per_row = [int(n) for n in lengths_cpu]
        texts = decoder.decode([ids[:n] for ids, n in zip(token_rows, counts_per_row)])
        results = []
        for row, (key, path) in enumerate(rows):
            reason = "eos" if finished_cpu[row] else "length"
            results.append(Generated(key, path, texts[row], counts_per_row[row], reason))
        if on_step is not None:  # what the stream held back (a trailing partial character)
            rest = [
                (r.key, r.path, r.text[len(shown[i]) :])
                for i, r in enumerate(results)
                if r.text != shown[i] and r.text.startswith(shown[i])
            ]
            if rest:
                on_step(rest)
        return results

    def _forward_steps(
        self,
        prompts: Sequence[Prompt],
        input_ids: Any,
        mask: Any,
        positions: Any,
        fork: Any,
        sampling: Sampling,
    ) -> Generator[Any, Any, None]:
        """Yield each step's next-token logits per row; receive the tokens chosen.

        The prompts are prefilled once and only the last position's logits are computed.
        Their keys and values then serve all of a prompt's paths: on a CPU, through the
        cascade attention of ccapp.engines.generation.forked_attention, where they are kept once per
        prompt; otherwise through a KV cache whose rows are copied per path (the fork).
        """
        import torch

        from ccapp.engines.generation import forked_attention

        width = input_ids.shape[1]
        next_position = positions[:, -1:].index_select(0, fork) + 1
        if self._cascade(width + sampling.max_new_tokens):
            state = forked_attention.ForkState(
                [len(p.paths) for p in prompts], sampling.max_new_tokens
            )
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=False,
                logits_to_keep=1,
                ccapp_fork=state,
            )
            state.start_decoding(mask)
            chosen = yield out.logits[:, -1, :].float().index_select(0, fork)
            while True:
                out = self.model(
                    input_ids=chosen[:, None],
                    position_ids=next_position,
                    use_cache=False,
                    ccapp_fork=state,
                )
                state.step += 1
                next_position = next_position + 1
                chosen = yield out.logits[:, -1, :].float()

        device = input_ids.device
        cache = self._new_cache(width + sampling.max_new_tokens)
        extra = (
            {"cache": cache, "cache_position": torch.arange(width, device=device)} if cache else {}
        )
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,  # only the last position's logits are needed
            **extra,
        )
        cache = out.cache
        cache.reorder_cache(fork)  # the fork: one prefill, len(paths) rows each
        full_mask = torch.ones(
            (len(fork), width + sampling.max_new_tokens), dtype=torch.long, device=device
        )
        full_mask[:, :width] = mask.index_select(0, fork)
        logits = out.logits[:, -1, :].float().index_select(0, fork)
        del out
        step = 0
        while True:
            chosen = yield logits
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
            step += 1

    def _cascade(self, total_tokens: int) -> bool:
        """Whether this batch decodes with the cascade (a CPU and an architecture it fits)."""
        from ccapp.engines.generation import forked_attention

        if self.cascade is None:
            device = next(self.model.parameters()).device
            self.cascade = device.type == "cpu" and forked_attention.supports(self.model)
            if self.cascade:
                forked_attention.install(self.model)
        return self.cascade and forked_attention.window_allows(self.model, total_tokens)

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
        decoder: ContinuationDecoder,
        tokens: Any,
        lengths: Any,
        shown: list[str],
        on_step: StepCallback,
    ) -> list[str]:
        """Report each row's new text, holding back an unfinished multi-byte character."""
        step = tokens.shape[1]
        ids = tokens.cpu().tolist()
        limits = lengths.cpu().tolist()
        texts = decoder.decode(
            [row_ids[: min(step, int(limit))] for row_ids, limit in zip(ids, limits)]
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


CONTEXT_TOKENS = 5  # prompt tokens decoded with a continuation (vLLM's detokenizer uses 5)


class ContinuationDecoder:
    """Decodes continuations with the end of their prompt, then cuts the prompt's text off.

    SentencePiece decoders strip the "▁" of the first token they decode, so `decode(new)`
    turns "▁If" at the start of a continuation into "If" and the stored text glues to the
    prefill ("…with this.If you need help"). Decoding the last prompt tokens with the new
    ones keeps it: the text is exactly what the full sequence decodes to after the prompt,
    for every tokenizer. Should the prompt's own text not be a prefix of the joined text
    (a decoder that rewrites across the boundary), the new tokens are decoded alone.
    """

    def __init__(self, tokenizer: Any, prompt_ids: Sequence[Sequence[int]]):
        self.tokenizer = tokenizer
        self.context = [list(ids)[-CONTEXT_TOKENS:] for ids in prompt_ids]
        self.prefix = tokenizer.batch_decode(self.context, skip_special_tokens=True)

    def decode(self, new_ids: Sequence[Sequence[int]]) -> list[str]:
        joined = self.tokenizer.batch_decode(
            [context + list(ids) for context, ids in zip(self.context, new_ids)],
            skip_special_tokens=True,
        )
        texts = []
        for text, prefix, ids in zip(joined, self.prefix, new_ids):
            if text.startswith(prefix):
                texts.append(text[len(prefix) :])
            else:
                texts.append(self.tokenizer.decode(list(ids), skip_special_tokens=True))
        return texts


def choose_tokens(logits: Any, sampling: Sampling, seen: Any, generator: Any) -> Any:
    """Each row's next token: greedy, or sampled from the warped distribution."""
    if sampling.temperature <= 0:
        return warp_logits(logits, sampling, seen).argmax(dim=-1)
    if sampling.top_k > 0:
        scores = warp_logits(logits, sampling, seen, with_top_k=False)
        return sample_top_k_nucleus(scores, sampling.top_k, sampling.top_p, generator)
    return sample_nucleus(warp_logits(logits, sampling, seen), 1.0, sampling.top_p, generator)


def warp_logits(
    logits: Any, sampling: Sampling, seen: Any = None, *, with_top_k: bool = True
) -> Any:
    """The scores `generate` samples from, before its top-p step, in its order.

    RepetitionPenaltyLogitsProcessor (every token already in the row, prompt included,
    padding excluded: negative logits times the penalty, positive ones divided by it,
    once per token), then TemperatureLogitsWarper, then TopKLogitsWarper (tokens below
    the k-th largest score are removed; ties with it stay). Greedy decoding (temperature
    0) gets the penalty only, as in `generate(do_sample=False)`.
    """
    import torch

    if seen is not None and sampling.repetition_penalty != 1.0:
        penalty = sampling.repetition_penalty
        penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
        logits = torch.where(seen, penalised, logits)
    if sampling.temperature <= 0:
        return logits
    logits = logits / sampling.temperature
    if sampling.top_k > 0 and with_top_k:
        k = min(sampling.top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits


def _seen_tokens(prompts: Sequence[Prompt], vocab: int, device: Any) -> Any:
    """Which vocabulary ids each prompt holds (its real tokens, not the padding)."""
    import torch

    seen = torch.zeros((len(prompts), vocab), dtype=torch.bool, device=device)
    for row, prompt in enumerate(prompts):
        ids = torch.tensor([i for i in prompt.ids if 0 <= i < vocab], dtype=torch.long)
        seen[row, ids.to(device)] = True
    return seen


MAX_DRAWS = 32


def sample_nucleus(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    """One token per row from softmax(logits / T) restricted to the top-p nucleus.

    The nucleus is the tokens whose more probable tokens hold less than top_p of the mass
    (TopPLogitsWarper's rule; the top token always qualifies). One deliberate difference:
    tokens of exactly equal probability at the boundary are all kept here, where
    TopPLogitsWarper keeps whichever of them its sort happens to place last; and the mass
    above a token is summed directly rather than as 1 minus an ascending cumulative sum,
    so a boundary that falls within float rounding of top_p can land on the other side.
    Neither changes a distribution except on such measure-zero ties. Instead of sorting the
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


def sample_top_k_nucleus(scores: Any, top_k: int, top_p: float, generator: Any) -> Any:
    """`sample_nucleus` after TopKLogitsWarper, on the k best scores instead of the vocabulary.

    With top-k on, only k tokens can be drawn, so the softmax, the nucleus and the draw
    are computed over those k (one `topk` over the vocabulary, then [rows, k] work): the
    same distribution as masking the rest to -inf, without the vocabulary-wide passes
    that cost ~12 reads of a [rows, vocab] tensor per step. TopKLogitsWarper keeps every
    token tied with the k-th score; rows where such ties spill past k take the full path.
    """
    import torch

    k = min(top_k, scores.shape[-1])
    values, indices = torch.topk(scores, k, dim=-1)  # sorted, best first
    spilled = (scores >= values[:, -1:]).sum(dim=-1) > k
    probs = torch.softmax(values, dim=-1)
    if top_p < 1.0:  # TopPLogitsWarper's rule: the mass strictly above a token < top_p
        above = (probs[:, None, :] * (probs[:, None, :] > probs[:, :, None])).sum(dim=-1)
        probs = probs * (above < top_p)
    cumulative = probs.cumsum(dim=-1)
    draw = torch.rand((len(probs), 1), generator=generator, device=probs.device)
    position = torch.searchsorted(cumulative, draw * cumulative[:, -1:], right=True)
    chosen = indices.gather(1, position.clamp(max=k - 1)).squeeze(1)
    if bool(spilled.any()):
        rows = spilled.nonzero().squeeze(1)
        kth = values.index_select(0, rows)[:, -1:]
        tied = scores.index_select(0, rows)
        tied = tied.masked_fill(tied < kth, float("-inf"))
        chosen[rows] = sample_nucleus(tied, 1.0, top_p, generator)
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
