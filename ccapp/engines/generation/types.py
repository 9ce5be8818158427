"""What every generation engine takes and returns, and the cancellation they all honour.

The in-process engine (hf_generate), the server engine (openai_generate), C2-Eval, C2-Syn,
the judges and training all speak these types, so they live apart from any one engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    """One rendered prompt and the path numbers to sample from it."""

    key: int  # the caller's id for the prompt (a C2-Eval cell)
    ids: Sequence[int]
    paths: Sequence[int]


@dataclass(frozen=True)
class Sampling:
    """Resolved sampling settings (see ccapp.engines.generation.sampling for where each comes from)."""

    max_new_tokens: int = 32
    temperature: float = 0.8  # 0 means greedy
    top_p: float = 0.7
    top_k: int = 0  # 0 means no top-k filter
    repetition_penalty: float = 1.0  # 1.0 means none; applies to greedy decoding too


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
