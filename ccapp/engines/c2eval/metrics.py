"""Corr@k, Corr_mean and their 95% bootstrap intervals, from stored verdicts.

Paths of one request are correlated (same prompt, same model state), so the bootstrap
resamples *requests*, not paths: each replicate draws requests with replacement and
recomputes every Corr@k and their mean from all paths of the drawn requests.
Unparsed and errored verdicts are counted and reported, never folded into "no": Corr@k is
corrected / (corrected + not corrected).

A k with no yes/no verdict has no Corr@k, and then there is no Corr_mean either: the mean of
the other k would be a different number under the same name. Every requested k keeps its
counts (`n`, `unparsed`, `errors`) and is listed in `no_verdicts`.

Two runs on the same requests are compared by a *paired* bootstrap (`paired_difference`):
one draw of requests is applied to both runs, so the spread between requests — most of the
width of each run's own interval — cancels out of the difference.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Judged:
    """One judged continuation, as metrics need it.

    `measured`: a correction span was located for this path (the heuristic's own, or the
    heuristic's borrowed by an LLM judge's "yes"). Only then do `tokens_to_correction` and
    `relapse` say anything; an unmeasured "yes" is corrected, with relapse unknown.
    """

    item: int
    k: int
    label: str
    tokens_to_correction: int | None = None
    relapse: bool = False
    measured: bool = False


@dataclass(frozen=True)
class Counts:
    """Per request (rows) and k (columns): yes/no verdicts, and of them the yeses."""

    items: list[int]
    yes: Any  # numpy (requests, ks)
    total: Any


def count_matrix(rows: Iterable[Judged], ks: Sequence[int], items: Sequence[int]) -> Counts:
    """The counts the bootstrap multiplies; requests not in `items` are left out."""
    import numpy as np

    item_pos = {item: i for i, item in enumerate(items)}
    k_pos = {k: j for j, k in enumerate(ks)}
    yes = np.zeros((len(items), len(ks)))
    total = np.zeros((len(items), len(ks)))
    for r in rows:
        if r.k in k_pos and r.item in item_pos and r.label in ("yes", "no"):
            total[item_pos[r.item], k_pos[r.k]] += 1
            yes[item_pos[r.item], k_pos[r.k]] += r.label == "yes"
    return Counts(list(items), yes, total)


def compute_metrics(
    judged: Iterable[Judged],
    ks: list[int],
    *,
    judge: str,
    short_cells: int = 0,
    replicates: int = BOOTSTRAP_REPLICATES,
) -> dict[str, Any]:
    rows = [r for r in judged if r.k in ks]
    items = sorted({r.item for r in rows})
    counts = count_matrix(rows, ks, items)
    unparsed = dict.fromkeys(ks, 0)
    errors = dict.fromkeys(ks, 0)
    for r in rows:
        if r.label == "unparsed":
            unparsed[r.k] += 1
        elif r.label not in ("yes", "no"):
            errors[r.k] += 1

    n = counts.total.sum(axis=0)
    present = n > 0
    corr = counts.yes.sum(axis=0) / n.clip(min=1)
    missing = [str(k) for j, k in enumerate(ks) if not present[j]]
    metrics: dict[str, Any] = {
        "judge": judge,
        "corr": {str(k): _round(corr[j]) for j, k in enumerate(ks) if present[j]},
        "corr_mean": _round(corr.mean()) if ks and present.all() else None,
        "corr_mean_reason": _mean_reason(ks, missing),
        "no_verdicts": missing,
        "n": {str(k): int(n[j]) for j, k in enumerate(ks)},
        "unparsed": {str(k): v for k, v in unparsed.items()},
        "errors": {str(k): v for k, v in errors.items()},
        "requests": len(items),
        "short_cells": short_cells,
    }
    metrics["ci95"] = _bootstrap(counts, ks, replicates) if present.any() else {}
    metrics["ci95_requests"] = _requests_behind(counts, ks)
    metrics |= _correction_details(rows)
    return metrics


def _mean_reason(ks: Sequence[int], missing: list[str]) -> str | None:
    """Why there is no Corr_mean, in words; None when there is one."""
    if not ks:
        return "no k was requested"
    if not missing:
        return None
    return f"no yes/no verdicts at k = {', '.join(missing)}: Corr_mean needs every k"


def _requests_behind(counts: Counts, ks: Sequence[int]) -> dict[str, int]:
    """How many requests each interval resamples: an interval from one request has zero
    width because there is nothing to resample, which is no certainty at all."""
    has = counts.total > 0
    out = {str(k): int(has[:, j].sum()) for j, k in enumerate(ks)}
    out["mean"] = int(has.any(axis=1).sum()) if ks else 0
    return out


def _correction_details(rows: list[Judged]) -> dict[str, Any]:
    """Relapse rate and tokens before the correction over the corrected paths where a
    correction span was located, with those counts: a "yes" without a span measured nothing
    and must not count as "no relapse"."""
    measured = [r for r in rows if r.label == "yes" and r.measured]
    steps = [r.tokens_to_correction for r in measured if r.tokens_to_correction is not None]
    return {
        "tokens_to_correction": {
            "mean": _round(statistics.fmean(steps)) if steps else None,
            "median": statistics.median(steps) if steps else None,
            "n": len(steps),
        },
        "relapse_rate": (
            _round(sum(r.relapse for r in measured) / len(measured)) if measured else None
        ),
        "relapse_n": len(measured),
    }


def paper_list(metrics: dict[str, Any], ks: list[int]) -> list[float | None]:
    """The paper's result file: [Corr@10, …, Corr@80, Corr_mean]."""
    return [metrics["corr"].get(str(k)) for k in ks] + [metrics["corr_mean"]]


def _replicate_corr(counts: Counts, replicates: int) -> Any:
    """Corr@k of each bootstrap replicate, (replicates × ks), NaN where a replicate drew no
    yes/no verdict at that k. The same seed draws the same requests for every call with the
    same number of requests, which is what pairs two runs."""
    import numpy as np

    rng = np.random.default_rng(BOOTSTRAP_SEED)
    items = counts.yes.shape[0]
    draws = rng.integers(0, items, size=(replicates, items))
    # A replicate's sums are (how often each request was drawn) · (its counts): a product of
    # (replicates × requests) by (requests × ks), instead of gathering a (replicates ×
    # requests × ks) array — 0.8 GB per judge for a run of 12,500 requests. Same numbers:
    # the counts are whole numbers, summed exactly either way.
    times = np.stack([np.bincount(row, minlength=items) for row in draws]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (times @ counts.yes) / (times @ counts.total)


def _bootstrap(counts: Counts, ks: list[int], replicates: int) -> dict[str, list[float]]:
    import numpy as np

    corr = _replicate_corr(counts, replicates)
    intervals: dict[str, list[float]] = {}
    for j, k in enumerate(ks):
        column = corr[:, j][~np.isnan(corr[:, j])]
        if column.size:
            intervals[str(k)] = _interval(column)
    if (counts.total.sum(axis=0) > 0).all():
        # only replicates where every k is defined: a mean over fewer k is another quantity
        complete = corr[~np.isnan(corr).any(axis=1)]
        if complete.size:
            intervals["mean"] = _interval(complete.mean(axis=1))
    return intervals


def paired_difference(
    first: Iterable[Judged],
    second: Iterable[Judged],
    ks: Sequence[int],
    *,
    requests: Sequence[int] | None = None,
    replicates: int = BOOTSTRAP_REPLICATES,
) -> dict[str, Any]:
    """Δ = second − first for each Corr@k and for Corr_mean, with 95% intervals from a
    paired bootstrap: each replicate draws the shared requests once and recomputes both runs
    on that same draw.

    Only for two runs on the same requests (the caller checks; `requests` are their shared
    identities, default every request either run has a verdict for). `excludes_zero` is the
    test: the interval lies wholly above or below 0 — and it never holds for a difference
    resting on a single request, whose interval has zero width for want of anything to
    resample.
    """
    import numpy as np

    a_rows, b_rows = list(first), list(second)
    items = sorted(
        requests if requests is not None else {r.item for r in a_rows} | {r.item for r in b_rows}
    )
    a, b = count_matrix(a_rows, ks, items), count_matrix(b_rows, ks, items)
    both = (a.total > 0) & (b.total > 0)  # requests with verdicts in both runs, per k
    defined = (a.total.sum(axis=0) > 0) & (b.total.sum(axis=0) > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = b.yes.sum(axis=0) / b.total.sum(axis=0) - a.yes.sum(axis=0) / a.total.sum(axis=0)
        delta = (
            _replicate_corr(b, replicates) - _replicate_corr(a, replicates)
            if items
            else np.zeros((0, len(ks)))
        )
    by_k = {
        str(k): _delta_entry(point[j], delta[:, j], int(both[:, j].sum()), defined[j])
        for j, k in enumerate(ks)
    }
    missing = [str(k) for j, k in enumerate(ks) if not defined[j]]
    out: dict[str, Any] = {
        "requests": len(items),
        "replicates": replicates,
        "by_k": by_k,
        "mean": None,
        "mean_reason": _mean_reason(ks, missing),
    }
    if ks and not missing:
        complete = delta[~np.isnan(delta).any(axis=1)]
        out["mean"] = _delta_entry(
            point.mean(), complete.mean(axis=1), int(both.any(axis=1).sum()), True
        )
    return out


def _delta_entry(point: float, replicates: Any, requests: int, defined: bool) -> dict[str, Any]:
    import numpy as np

    values = replicates[~np.isnan(replicates)]
    if not defined or not values.size:
        return {"delta": None, "ci95": None, "excludes_zero": False, "requests": requests}
    low, high = _interval(values)
    return {
        "delta": _round(point),
        "ci95": [low, high],
        "excludes_zero": requests >= 2 and (low > 0 or high < 0),
        "requests": requests,
    }


def _interval(values: Any) -> list[float]:
    import numpy as np

    return [_round(np.percentile(values, 2.5)), _round(np.percentile(values, 97.5))]


def _round(value: Any) -> float:
    return round(float(value), 4)
