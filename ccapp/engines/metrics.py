"""Corr@k, Corr_mean and their 95% bootstrap intervals, from stored verdicts.

Paths of one request are correlated (same prompt, same model state), so the bootstrap
resamples *requests*, not paths: each replicate draws requests with replacement and
recomputes every Corr@k and their mean from all paths of the drawn requests.
Unparsed and errored verdicts are counted and reported, never folded into "no": Corr@k is
corrected / (corrected + not corrected).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Judged:
    """One judged continuation, as metrics need it."""

    item: int
    k: int
    label: str
    tokens_to_correction: int | None = None
    relapse: bool = False


def compute_metrics(
    judged: Iterable[Judged],
    ks: list[int],
    *,
    judge: str,
    short_cells: int = 0,
    replicates: int = BOOTSTRAP_REPLICATES,
) -> dict[str, Any]:
    import numpy as np

    rows = list(judged)
    items = sorted({r.item for r in rows})
    item_pos = {item: i for i, item in enumerate(items)}
    k_pos = {k: j for j, k in enumerate(ks)}
    yes = np.zeros((len(items), len(ks)))
    total = np.zeros((len(items), len(ks)))
    unparsed = dict.fromkeys(ks, 0)
    errors = dict.fromkeys(ks, 0)
    for r in rows:
        if r.k not in k_pos:
            continue
        if r.label in ("yes", "no"):
            total[item_pos[r.item], k_pos[r.k]] += 1
            yes[item_pos[r.item], k_pos[r.k]] += r.label == "yes"
        elif r.label == "unparsed":
            unparsed[r.k] += 1
        else:
            errors[r.k] += 1

    n = total.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = yes.sum(axis=0) / n
    present = n > 0
    metrics: dict[str, Any] = {
        "judge": judge,
        "corr": {str(k): _round(corr[j]) for k, j in k_pos.items() if present[j]},
        "corr_mean": _round(float(corr[present].mean())) if present.any() else None,
        "n": {str(k): int(n[j]) for k, j in k_pos.items()},
        "unparsed": {str(k): v for k, v in unparsed.items()},
        "errors": {str(k): v for k, v in errors.items()},
        "requests": len(items),
        "short_cells": short_cells,
    }
    metrics["ci95"] = _bootstrap(yes, total, ks, replicates) if items and present.any() else {}
    corrected = [r for r in rows if r.label == "yes"]
    steps = [r.tokens_to_correction for r in corrected if r.tokens_to_correction is not None]
    metrics["tokens_to_correction"] = {
        "mean": _round(statistics.fmean(steps)) if steps else None,
        "median": statistics.median(steps) if steps else None,
    }
    metrics["relapse_rate"] = (
        _round(sum(r.relapse for r in corrected) / len(corrected)) if corrected else None
    )
    return metrics


def paper_list(metrics: dict[str, Any], ks: list[int]) -> list[float | None]:
    """The paper's result file: [Corr@10, …, Corr@80, Corr_mean]."""
    return [metrics["corr"].get(str(k)) for k in ks] + [metrics["corr_mean"]]


def _bootstrap(yes: Any, total: Any, ks: list[int], replicates: int) -> dict[str, list[float]]:
    import numpy as np

    rng = np.random.default_rng(BOOTSTRAP_SEED)
    items = yes.shape[0]
    draws = rng.integers(0, items, size=(replicates, items))
    # A replicate's sums are (how often each request was drawn) · (its counts): a product of
    # (replicates × requests) by (requests × ks), instead of gathering a (replicates ×
    # requests × ks) array — 0.8 GB per judge for a run of 12,500 requests. Same numbers:
    # the counts are whole numbers, summed exactly either way.
    times = np.stack([np.bincount(row, minlength=items) for row in draws]).astype(yes.dtype)
    yes_sum = times @ yes  # (replicates, len(ks))
    total_sum = times @ total
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = yes_sum / total_sum
    intervals: dict[str, list[float]] = {}
    for j, k in enumerate(ks):
        column = corr[:, j][~np.isnan(corr[:, j])]
        if column.size:
            intervals[str(k)] = [
                _round(np.percentile(column, 2.5)),
                _round(np.percentile(column, 97.5)),
            ]
    means = np.nanmean(corr, axis=1)
    means = means[~np.isnan(means)]
    if means.size:
        intervals["mean"] = [_round(np.percentile(means, 2.5)), _round(np.percentile(means, 97.5))]
    return intervals


def _round(value: Any) -> float:
    return round(float(value), 4)
