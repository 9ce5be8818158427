"""Judge specs (`--judge`) to judge objects."""

from __future__ import annotations

from ccapp.engines.judges.base import Judge
from ccapp.engines.judges.heuristic import HeuristicJudge
from ccapp.errors import UserError

KNOWN = ("heuristic",)


def check_judge_spec(spec: str) -> str:
    """Validate `--judge` before anything expensive starts."""
    spec = spec.strip()
    if spec not in KNOWN:
        raise UserError(
            f"unknown judge '{spec}'",
            where="--judge",
            fix=f"use one of: {', '.join(KNOWN)}",
        )
    return spec


def make_judge(spec: str) -> Judge:
    spec = check_judge_spec(spec)
    return HeuristicJudge()
