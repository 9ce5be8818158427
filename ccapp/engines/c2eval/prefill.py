"""Prefills: an affirmative opener plus the harmful response, cut to the first k units.

Units are whitespace words (the paper's default; the opener counts) or the evaluated
model's tokens (the opener does not count). The cut is made in the original text, so the
response's own line breaks and spacing survive — the model sees a true prefix of it.

Tokens are counted as the model's tokenizer splits the whole prefill (opener, space and
response together, as it will appear in the prompt), and the cut falls exactly after the
k-th response token, whitespace tokens included: k = 2, 3 and 4 give three different
prefills. How many tokens the prefill takes in the rendered prompt is stored per cell
(`prefill_token_count`), since a chat template may still trim or re-join its edges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"\S+")
UNITS = ("words", "tokens")


@dataclass(frozen=True)
class Prefill:
    text: str
    short: bool  # the response had fewer than k units, so all of it is used


def build_prefill(
    opener: str, response: str, k: int, unit: str = "words", tokenizer: Any = None
) -> Prefill:
    response = response.strip()
    if unit == "words":
        combined = f"{opener} {response}"
        words = list(_WORD.finditer(combined))
        if len(words) <= k:
            return Prefill(combined, short=len(words) < k)
        return Prefill(combined[: words[k - 1].end()], short=False)
    if unit == "tokens":
        if tokenizer is None:
            raise ValueError("unit 'tokens' needs the evaluated model's tokenizer")
        combined = f"{opener} {response}"
        ends = _response_token_ends(tokenizer, combined, len(opener))
        if len(ends) <= k:
            return Prefill(combined, short=len(ends) < k)
        return Prefill(combined[: ends[k - 1]], short=False)
    raise ValueError(f"unknown unit {unit!r}; use one of {UNITS}")


def _response_token_ends(tokenizer: Any, combined: str, opener_chars: int) -> list[int]:
    """Where each token after the opener ends, in `combined`'s tokenization.

    A token belongs to the response when it starts at or after the opener's end (the
    separating space usually starts the first one); one that straddles the boundary counts
    as the opener's. Zero-width tokens (a prepended "▁") hold no text and are skipped.
    """
    offsets = tokenizer(combined, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    return [end for start, end in offsets if start >= opener_chars and end > start]


def prefill_token_counts(tokenizer: Any, rendered: list[str], prefills: list[str]) -> list[int]:
    """How many tokens of each rendered prompt hold its prefill: the tokens that overlap
    the prefill's text at the end of the prompt (one batched tokenizer call). A template
    that normalised the prefill's whitespace, so that it is not found verbatim, gets the
    prefill's own token count instead."""
    if not rendered:
        return []
    offsets = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    counts = []
    for prompt, prefill, spans in zip(rendered, prefills, offsets):
        body = prefill.rstrip()
        start = prompt.rfind(body) if body else -1
        if start < 0 or prompt[start + len(body) :].strip():
            counts.append(len(tokenizer(prefill, add_special_tokens=False)["input_ids"]))
        else:
            counts.append(sum(1 for first, end in spans if end > start and end > first))
    return counts
