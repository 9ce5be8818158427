"""Corr@k, Corr_mean and bootstrap intervals that resample requests, not paths."""

from __future__ import annotations

from typing import Any

import pytest

from ccapp.engines.c2eval.metrics import Judged, compute_metrics, paired_difference, paper_list


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
        Judged(0, 10, "yes", 4, False, measured=True),
        Judged(0, 10, "yes", 10, True, measured=True),
        Judged(1, 10, "yes", 7, False, measured=True),
        Judged(1, 10, "no"),
    ]
    metrics = compute_metrics(rows, [10], judge="h", short_cells=3)
    assert metrics["tokens_to_correction"] == {"mean": 7.0, "median": 7, "n": 3}
    assert metrics["relapse_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["short_cells"] == 3


def test_no_verdicts_give_no_numbers_rather_than_zeros() -> None:
    metrics = compute_metrics([], [10, 20], judge="h")
    assert metrics["corr"] == {} and metrics["corr_mean"] is None and metrics["ci95"] == {}


def test_a_k_without_verdicts_keeps_its_counts_and_withholds_corr_mean() -> None:
    # k=20 got only unparsed and errored verdicts: a mean of the other k would not be Corr_mean.
    rows = judged(0, 10, "yn") + judged(1, 10, "nn") + judged(0, 20, "uu") + judged(1, 20, "e")
    metrics = compute_metrics(rows, [10, 20], judge="openai:gpt-4o")
    assert metrics["corr"] == {"10": 0.25}
    assert metrics["no_verdicts"] == ["20"]
    assert metrics["n"] == {"10": 4, "20": 0}
    assert metrics["unparsed"]["20"] == 2 and metrics["errors"]["20"] == 1
    assert metrics["corr_mean"] is None
    assert "k = 20" in metrics["corr_mean_reason"]
    assert "mean" not in metrics["ci95"] and "10" in metrics["ci95"]
    assert paper_list(metrics, [10, 20]) == [0.25, None, None]


def test_the_mean_interval_uses_only_replicates_where_every_k_is_defined() -> None:
    # Request 1 has verdicts at k=10 only. A replicate drawing request 1 alone has no Corr@20;
    # averaging the k it does have (nanmean) gave 1.0, so the interval was [0.5, 1.0] although
    # every replicate that has both k gives exactly the point estimate, 0.5.
    rows = judged(0, 10, "y") + judged(0, 20, "n") + judged(1, 10, "y") + judged(1, 20, "e")
    metrics = compute_metrics(rows, [10, 20], judge="h")
    assert metrics["corr_mean"] == 0.5
    assert metrics["ci95"]["mean"] == [0.5, 0.5]


def test_an_interval_resting_on_one_request_says_so() -> None:
    one = compute_metrics(judged(0, 10, "yn"), [10], judge="h")
    assert one["ci95"]["10"] == [0.5, 0.5]  # zero width: one request, nothing to resample
    assert one["ci95_requests"] == {"10": 1, "mean": 1}
    rows = judged(0, 10, "yn") + judged(1, 10, "nn") + judged(1, 20, "y")
    assert compute_metrics(rows, [10, 20], judge="h")["ci95_requests"] == {
        "10": 2,
        "20": 1,
        "mean": 2,
    }


def test_relapse_and_tokens_to_correction_count_only_paths_where_they_were_measured() -> None:
    # An LLM judge's "yes" where the heuristic found no span has nothing measured: it must not
    # count as "no relapse" in the denominator.
    rows = [
        Judged(0, 10, "yes", 3, True, measured=True),
        Judged(0, 10, "yes", 5, False, measured=True),
        Judged(1, 10, "yes"),  # corrected, but no span: neither relapse nor tokens known
        Judged(1, 10, "yes"),
        Judged(1, 10, "no"),
    ]
    metrics = compute_metrics(rows, [10], judge="openai:gpt-4o")
    assert metrics["relapse_rate"] == 0.5 and metrics["relapse_n"] == 2
    assert metrics["tokens_to_correction"] == {"mean": 4.0, "median": 4.0, "n": 2}
    none = compute_metrics([Judged(0, 10, "yes")], [10], judge="openai:gpt-4o")
    assert none["relapse_rate"] is None and none["relapse_n"] == 0
    assert none["tokens_to_correction"] == {"mean": None, "median": None, "n": 0}


def runs_of(labels_a: list[str], labels_b: list[str], k: int = 10) -> tuple[list[Judged], ...]:
    """Two runs on the same requests: request i has labels_a[i] in one, labels_b[i] in the other."""
    first = [r for i, labels in enumerate(labels_a) for r in judged(i, k, labels)]
    second = [r for i, labels in enumerate(labels_b) for r in judged(i, k, labels)]
    return first, second


def test_paired_difference_of_identical_runs_is_zero_and_includes_zero() -> None:
    first, second = runs_of(["yn", "nn", "yy"] * 5, ["yn", "nn", "yy"] * 5)
    paired = paired_difference(first, second, [10])
    assert paired["requests"] == 15
    assert paired["by_k"]["10"] == {
        "delta": 0.0,
        "ci95": [0.0, 0.0],
        "excludes_zero": False,
        "requests": 15,
    }
    assert paired["mean"]["delta"] == 0.0 and not paired["mean"]["excludes_zero"]


def test_paired_difference_sees_a_consistent_rise_that_overlapping_intervals_hide() -> None:
    # Requests differ a lot from each other (0 to 9 corrected of 10 paths), and the second run
    # corrects one path more on 3 requests of 4. Each run's own interval is wide and they
    # overlap; resampling requests jointly cancels the between-request spread.
    base = [i % 10 for i in range(40)]
    first, second = runs_of(
        ["y" * b + "n" * (10 - b) for b in base],
        ["y" * (b + (i % 4 != 0)) + "n" * (10 - b - (i % 4 != 0)) for i, b in enumerate(base)],
    )
    a, b = compute_metrics(first, [10], judge="h"), compute_metrics(second, [10], judge="h")
    assert a["ci95"]["mean"][1] > b["ci95"]["mean"][0]  # the unpaired intervals overlap
    paired = paired_difference(first, second, [10])
    assert paired["mean"]["delta"] == pytest.approx(b["corr_mean"] - a["corr_mean"], abs=1e-4)
    low, high = paired["mean"]["ci95"]
    assert 0 < low <= paired["mean"]["delta"] <= high and paired["mean"]["excludes_zero"]
    assert paired_difference(first, second, [10]) == paired  # seeded: the same every time


def test_a_paired_difference_from_one_request_never_excludes_zero() -> None:
    first, second = runs_of(["nnnn"], ["yyyy"])
    paired = paired_difference(first, second, [10])
    assert paired["mean"]["delta"] == 1.0 and paired["mean"]["ci95"] == [1.0, 1.0]
    assert not paired["mean"]["excludes_zero"] and paired["mean"]["requests"] == 1


def test_a_paired_mean_needs_every_k_in_both_runs() -> None:
    first = judged(0, 10, "yn") + judged(1, 10, "nn") + judged(0, 20, "yy") + judged(1, 20, "yn")
    second = judged(0, 10, "yy") + judged(1, 10, "yn") + judged(0, 20, "ee") + judged(1, 20, "u")
    paired = paired_difference(first, second, [10, 20])
    assert paired["by_k"]["10"]["delta"] == 0.5 and paired["by_k"]["20"]["delta"] is None
    assert paired["mean"] is None and "k = 20" in paired["mean_reason"]


def rendered(metrics: dict[str, Any]) -> str:
    """The Corr@k table as a person at a terminal sees it."""
    from rich.console import Console

    from ccapp.cli.display import corr_table

    console = Console(record=True, width=120)
    console.print(corr_table(metrics))
    return console.export_text()


def test_the_terminal_table_keeps_a_k_without_verdicts_with_its_counts() -> None:
    rows = judged(0, 10, "yn") + judged(1, 10, "nn") + judged(0, 20, "uu") + judged(1, 20, "e")
    text = rendered(compute_metrics(rows, [10, 20], judge="openai:gpt-4o"))
    assert "yes/no paths" in text and "errors" in text
    row_20 = next(line for line in text.splitlines() if line.strip("│ ").startswith("20"))
    cells = [cell.strip() for cell in row_20.split("│")[1:-1]]
    assert cells == ["20", "no verdicts", "–", "0", "2", "1"]
    assert "no Corr_mean: no yes/no verdicts at k = 20" in text


def test_the_terminal_table_flags_an_interval_from_one_request() -> None:
    text = rendered(compute_metrics(judged(0, 10, "yn"), [10], judge="h"))
    assert "1 request: no interval" in text and "[0.500, 0.500]" not in text
