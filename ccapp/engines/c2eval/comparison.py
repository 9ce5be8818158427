"""Two eval runs compared the way their numbers allow: a paired bootstrap of the difference.

Two runs on the same requests (same data rows, same request text) are paired: every
bootstrap replicate draws the same requests for both, so Δ Corr@k and Δ Corr_mean get
intervals that are not swollen by how much requests differ from each other — which is most
of the width of each run's own interval. "The two intervals do not overlap" is a much
weaker test than it looks (it misses real differences, and says nothing about the
difference's own uncertainty); ccapp never decides by it.

Runs on different requests cannot be paired, and no interval for the difference is given.

The baseline of an eval run is its nearest eval ancestor in the lineage (eval → syn → train
→ eval: the evaluation of the model before training); reports carry the paired Δ against it
when both ran on the same requests.
"""

from __future__ import annotations

from typing import Any

from ccapp.engines.c2eval.metrics import Judged, paired_difference
from ccapp.store import Run, RunKind, Store, runs
from ccapp.store import evals as rows_store


def pairing_problem(store: Store, first: Run, second: Run) -> str | None:
    """Why two runs cannot be paired, in words; None when they ran on the same requests."""
    for run in (first, second):
        if run.kind is not RunKind.EVAL:
            return f"run {run.id} is {run.kind.a_run}, not an eval run"
    a, b = (_request_identities(store, run) for run in (first, second))
    if a == b:
        return None
    shared = len(a & b)
    return (
        f"not the same requests (run {first.id}: {len(a)}, run {second.id}: {len(b)}, "
        f"{shared} in both): other data, another row limit, or lenient reading"
    )


def _request_identities(store: Store, run: Run) -> set[tuple[int, str, str]]:
    """A request is its row in the data and its text: the same index in another file is
    another request."""
    return {
        (item.idx, item.request, item.harmful_response)
        for item in rows_store.get_items(store, run.id)
    }


def comparison_judges(store: Store, first: Run, second: Run) -> tuple[str, str]:
    """One judge for both when one judged both (the first run's, else the second's);
    otherwise each run's own — a difference that then mixes judges, which callers show."""
    both = set(rows_store.judges_of(store, first.id)) & set(rows_store.judges_of(store, second.id))
    for judge in (first.judge, second.judge):
        if judge in both:
            return judge, judge
    return first.judge, second.judge


def compare_runs(
    store: Store, first: Run, second: Run, judges: tuple[str, str] | None = None
) -> dict[str, Any]:
    """second − first: the paired Δ per k and for Corr_mean, or why it cannot be paired."""
    judge_a, judge_b = judges or comparison_judges(store, first, second)
    out: dict[str, Any] = {
        "first": first.id,
        "second": second.id,
        "judges": [judge_a, judge_b],
        "paired": False,
        "reason": pairing_problem(store, first, second),
    }
    if out["reason"] is not None:
        return out
    ks_a = [int(k) for k in first.config.get("ks", [])]
    ks_b = {int(k) for k in second.config.get("ks", [])}
    ks = [k for k in ks_a if k in ks_b]
    requests = sorted(item.idx for item in rows_store.get_items(store, first.id))
    result = paired_difference(
        _judged(store, first.id, judge_a), _judged(store, second.id, judge_b), ks, requests=requests
    )
    if set(ks_a) != ks_b:
        result["mean"] = None
        result["mean_reason"] = (
            f"the runs have different k ({_ks(ks_a)} vs {_ks(sorted(ks_b))}): their Corr_mean "
            "are means over different prefix lengths"
        )
    return out | {"paired": True} | result


def _judged(store: Store, run_id: int, judge: str) -> list[Judged]:
    return [Judged(*row) for row in rows_store.judged(store, run_id, judge)]


def _ks(ks: list[int]) -> str:
    return ",".join(str(k) for k in ks)


def baseline_of(store: Store, run: Run) -> Run | None:
    """The nearest eval run up the lineage (an eval run of a trained model: the eval its
    syn run drew from), or None."""
    seen = {run.id}
    parent_id = run.parent_id
    while parent_id is not None and parent_id not in seen:
        seen.add(parent_id)
        parent = runs.get_run(store, parent_id)
        if parent.kind is RunKind.EVAL:
            return parent
        parent_id = parent.parent_id
    return None


def versus_baseline(store: Store, run: Run) -> dict[str, Any] | None:
    """For a report: the paired Δ of `run` against its baseline, for every judge that
    judged both (or why it cannot be paired); None when the run has no eval ancestor."""
    baseline = baseline_of(store, run)
    if baseline is None:
        return None
    problem = pairing_problem(store, baseline, run)
    common = sorted(
        set(rows_store.judges_of(store, baseline.id)) & set(rows_store.judges_of(store, run.id))
    )
    out: dict[str, Any] = {
        "run_id": baseline.id,
        "paired": problem is None and bool(common),
        "reason": problem or (None if common else "no judge judged both runs"),
        "by_judge": {},
    }
    if out["paired"]:
        out["by_judge"] = {
            judge: {
                key: value
                for key, value in compare_runs(store, baseline, run, (judge, judge)).items()
                if key not in ("first", "second", "judges", "paired", "reason")
            }
            for judge in common
        }
    return out


def describe(delta: dict[str, Any] | None, label: str = "Δ Corr_mean") -> str:
    """One line for a person: the Δ, its paired interval and what it says."""
    if delta is None or delta.get("delta") is None:
        return f"{label}: –"
    low, high = delta["ci95"]
    if delta["requests"] < 2:
        verdict = "one request: no interval"
    elif delta["excludes_zero"]:
        verdict = "excludes 0"
    else:
        verdict = "includes 0"
    return f"{label} {delta['delta']:+.4f} [{low:+.4f}, {high:+.4f}] ({verdict})"
