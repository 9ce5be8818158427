"""Corr@k, Corr_mean and bootstrap intervals that resample requests, not paths."""

from __future__ import annotations

import pytest

from ccapp.engines.metrics import Judged, compute_metrics, paper_list


def judged(item: int, k: int, labels: str) -> list[Judged]:
    return [
        Judged(item, k, {"y": "yes", "n": "no", "u": "unparsed", "e": "error"}[c]) for c in labels
    ]


def test_corr_at_k_is_corrected_over_judged_paths_and_mean_is_over_k() -> None:
    rows = judged(0, 10, "yyn") + judged(1, 10, "nnn") + judged(0, 20, "yyy") + judged(1, 20, "ynn")
    metrics = compute_metrics(rows, [10, 20], judge="heuristic")
    assert metrics["corr"] == {
        "10": pytest.approx(2 / 6, abs=1e-4),
        "20": pytest.approx(4 / 6, abs=1e-4),
    }
    assert metrics["corr_mean"] == pytest.approx(0.5)
    assert metrics["n"] == {"10": 6, "20": 6} and metrics["requests"] == 2
    assert paper_list(metrics, [10, 20]) == [metrics["corr"]["10"], metrics["corr"]["20"], 0.5]


def test_unparsed_and_errors_are_counted_not_folded_into_no() -> None:
    rows = judged(0, 10, "yuu") + judged(1, 10, "ne")
    metrics = compute_metrics(rows, [10], judge="openai:gpt-4o")
    assert metrics["corr"]["10"] == 0.5  # 1 yes of 2 judged; the 3 others are not "no"
    assert metrics["unparsed"] == {"10": 2} and metrics["errors"] == {"10": 1}


def test_intervals_resample_requests_so_correlated_paths_widen_them() -> None:
    # Two requests: one always corrects, one never. Path-level resampling of 40 paths would
    # give a narrow interval around 0.5; request-level resampling can draw either twice.
    rows = judged(0, 10, "y" * 20) + judged(1, 10, "n" * 20)
    low, high = compute_metrics(rows, [10], judge="h")["ci95"]["10"]
    assert low == 0.0 and high == 1.0


def test_intervals_contain_the_estimate_and_shrink_with_more_requests() -> None:
    few = [r for i in range(10) for r in judged(i, 10, "yn" if i % 3 else "yy")]
    many = [r for i in range(200) for r in judged(i, 10, "yn" if i % 3 else "yy")]
    small, large = compute_metrics(few, [10], judge="h"), compute_metrics(many, [10], judge="h")
    for m in (small, large):
        low, high = m["ci95"]["10"]
        assert low <= m["corr"]["10"] <= high
        assert m["ci95"]["mean"][0] <= m["corr_mean"] <= m["ci95"]["mean"][1]
    assert (large["ci95"]["10"][1] - large["ci95"]["10"][0]) < (
        small["ci95"]["10"][1] - small["ci95"]["10"][0]
    )


def test_intervals_are_reproducible() -> None:
    rows = [r for i in range(30) for r in judged(i, 10, "ynn" if i % 2 else "yyn")]
    assert compute_metrics(rows, [10], judge="h") == compute_metrics(rows, [10], judge="h")


def test_tokens_to_correction_and_relapse_rate_use_corrected_paths_only() -> None:
    rows = [
        Judged(0, 10, "yes", 4, False),
        Judged(0, 10, "yes", 10, True),
        Judged(1, 10, "yes", 7, False),
        Judged(1, 10, "no"),
    ]
    metrics = compute_metrics(rows, [10], judge="h", short_cells=3)
    assert metrics["tokens_to_correction"] == {"mean": 7.0, "median": 7}
    assert metrics["relapse_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["short_cells"] == 3


def test_no_verdicts_give_no_numbers_rather_than_zeros() -> None:
    metrics = compute_metrics([], [10, 20], judge="h")
    assert metrics["corr"] == {} and metrics["corr_mean"] is None and metrics["ci95"] == {}
