"""How far two judges agree, and how far a judge agrees with human labels.

Only yes/no verdicts are compared; a continuation one judge left unparsed, errored or
unjudged is counted as excluded, not guessed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ccapp.store import Store
from ccapp.store import evals as rows_store


@dataclass(frozen=True)
class Confusion:
    """Counts with the first judge (or the human label) as reference: yy, yn, ny, nn."""

    yes_yes: int = 0
    yes_no: int = 0  # first yes, second no
    no_yes: int = 0
    no_no: int = 0

    @property
    def n(self) -> int:
        return self.yes_yes + self.yes_no + self.no_yes + self.no_no

    @property
    def agreement(self) -> float | None:
        return (self.yes_yes + self.no_no) / self.n if self.n else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa; None when it is undefined (both judges constant and equal)."""
        n = self.n
        if not n:
            return None
        observed = (self.yes_yes + self.no_no) / n
        first_yes = (self.yes_yes + self.yes_no) / n
        second_yes = (self.yes_yes + self.no_yes) / n
        expected = first_yes * second_yes + (1 - first_yes) * (1 - second_yes)
        if expected >= 1.0:
            return None
        return (observed - expected) / (1 - expected)

    @property
    def kappa_undefined(self) -> str | None:
        """Why there is no kappa, in words (None: there is one)."""
        if not self.n:
            return "no continuation was judged by both"
        if self.kappa is not None:
            return None
        label = "yes" if self.yes_yes else "no"
        return f"both judges answered only '{label}', so agreement by chance is 1"

    def as_dict(self) -> dict[str, Any]:
        return {
            "yes_yes": self.yes_yes,
            "yes_no": self.yes_no,
            "no_yes": self.no_yes,
            "no_no": self.no_no,
            "n": self.n,
            "agreement": _round(self.agreement),
            "kappa": _round(self.kappa),
            "kappa_undefined": self.kappa_undefined,
        }


def confusion(pairs: Iterable[tuple[str, str]]) -> Confusion:
    counts = {"yes_yes": 0, "yes_no": 0, "no_yes": 0, "no_no": 0}
    for first, second in pairs:
        if first in ("yes", "no") and second in ("yes", "no"):
            counts[f"{first}_{second}"] += 1
    return Confusion(**counts)


def run_agreement(store: Store, run_id: int, first: str, second: str) -> dict[str, Any]:
    a = rows_store.verdict_labels(store, run_id, first)
    b = rows_store.verdict_labels(store, run_id, second)
    total = rows_store.count_continuations(store, run_id)
    both = sorted(set(a) & set(b))
    pairs = [(cid, a[cid][1], a[cid][2], b[cid][2]) for cid in both]
    compared = [
        (cid, k, x, y) for cid, k, x, y in pairs if x in ("yes", "no") and y in ("yes", "no")
    ]
    by_k: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for _cid, k, x, y in compared:
        by_k[k].append((x, y))
    overall = confusion((x, y) for _cid, _k, x, y in compared)
    return {
        "run_id": run_id,
        "judges": [first, second],
        "continuations": total,
        "compared": overall.n,
        "excluded": total - overall.n,
        "confusion": overall.as_dict(),
        "per_k": {str(k): confusion(v).as_dict() for k, v in sorted(by_k.items())},
        "disagreements": [cid for cid, _k, x, y in compared if x != y],
    }


@dataclass(frozen=True)
class Calibration:
    """A judge against human labels (the label is the reference, "yes" the positive class)."""

    table: Confusion
    unparsed: int
    errors: int

    def as_dict(self) -> dict[str, Any]:
        t = self.table
        predicted_yes = t.yes_yes + t.no_yes
        actual_yes = t.yes_yes + t.yes_no
        return {
            "n": t.n,
            "accuracy": _round(t.agreement),
            "precision": _round(t.yes_yes / predicted_yes if predicted_yes else None),
            "recall": _round(t.yes_yes / actual_yes if actual_yes else None),
            "kappa": _round(t.kappa),
            "confusion": {
                "true_yes": t.yes_yes,
                "false_no": t.yes_no,
                "false_yes": t.no_yes,
                "true_no": t.no_no,
            },
            "unparsed": self.unparsed,
            "errors": self.errors,
        }


def calibrate(pairs: list[tuple[str, str]]) -> Calibration:
    """(human label, judge label) pairs -> accuracy, precision, recall, kappa."""
    return Calibration(
        confusion(pairs),
        sum(j == "unparsed" for _, j in pairs),
        sum(j == "error" for _, j in pairs),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
