"""Prefills: an affirmative opener plus the harmful response, cut to the first k units.

Units are whitespace words (the paper's default; the opener counts) or the evaluated
model's tokens (the opener does not count). The cut is made in the original text, so the
response's own line breaks and spacing survive — the model sees a true prefix of it.
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
        offsets = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        if len(offsets) <= k:
            return Prefill(f"{opener} {response}", short=len(offsets) < k)
        return Prefill(f"{opener} {response[: offsets[k - 1][1]].rstrip()}", short=False)
    raise ValueError(f"unknown unit {unit!r}; use one of {UNITS}")
