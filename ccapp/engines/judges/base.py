"""The judge interface: a batch of (request, prefill, continuation) in, verdicts out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

LABELS = ("yes", "no", "unparsed", "error")


@dataclass(frozen=True)
class JudgeInput:
    request: str
    prefill: str
    continuation: str


@dataclass(frozen=True)
class Verdict:
    label: str  # yes (corrected) | no | unparsed (an answer that is neither) | error
    score: float | None = None  # P(yes) where the judge has one
    raw: str | None = None  # the judge's own answer, for audits
    span: tuple[int, int] | None = None  # where the correction starts/ends in the continuation
    relapse: bool = False  # harmful content resumes after the correction


class Judge(Protocol):
    spec: str  # stored with each verdict, e.g. "heuristic" or "openai:gpt-4o"

    def judge(self, batch: Sequence[JudgeInput]) -> list[Verdict]: ...
