"""The price table and the cost estimate: one table, dated, with the Batch API's discount;
an unknown model gets no invented price."""

from __future__ import annotations

import re

import pytest

from ccapp.engines.judges.base import JudgeInput
from ccapp.engines.judges.openai_batch import BatchSettings
from ccapp.engines.judges.openai_judge import SYSTEM, Usage
from ccapp.engines.judges.pricing import (
    BATCH_DISCOUNT,
    PRICES,
    PRICES_DATE,
    PRICES_SOURCE,
    cost_usd,
    estimate,
    estimate_tokens,
    price_of,
)
from ccapp.engines.judges.registry import JudgeOptions, make_judge
from ccapp.engines.judges.runner import planned_cost


def test_the_table_says_when_and_where_it_was_read() -> None:
    assert re.fullmatch(r"\d{4}-\d{2}", PRICES_DATE)
    assert PRICES_SOURCE.startswith("https://openai.com/")
    assert all(p.input > 0 and p.output >= p.input for p in PRICES.values())


@pytest.mark.parametrize(
    ("model", "listed"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),  # a dated snapshot: its family's price
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # unless it is listed on its own
        ("openai/gpt-4o-mini", "gpt-4o-mini"),  # a vendor prefix, as servers name models
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
    ],
)
def test_models_are_priced_by_name_or_family(model: str, listed: str) -> None:
    assert price_of(model) == PRICES[listed]


@pytest.mark.parametrize("model", ["my-llama", "gpt-4o-turbo-extreme", "", "qwen2-7b"])
def test_unknown_models_have_no_price(model: str) -> None:
    assert price_of(model) is None
    assert cost_usd(model, 1000, 10) is None


def test_the_batch_api_costs_half() -> None:
    assert BATCH_DISCOUNT == 0.5
    full = cost_usd("gpt-4o", 1_000_000, 100_000)
    assert full == 2.50 + 1.00
    assert cost_usd("gpt-4o", 1_000_000, 100_000, batch=True) == full / 2
    usage = Usage(calls=2, prompt_tokens=1_000_000, completion_tokens=100_000)
    assert usage.cost_usd("gpt-4o", batch=True) == 1.75


def test_tokens_are_estimated_as_chars_over_four() -> None:
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde", "x" * 4000)] == [
        0,
        1,
        1,
        2,
        1000,
    ]


def test_the_paper_workload_at_the_batch_price() -> None:
    """500 requests × 8 k × 20 paths of ~2,000-character questions: the number a user sees."""
    prompts = [("x" * 2000, 20)] * (500 * 8)
    sync = estimate("openai:gpt-4o", "gpt-4o", prompts, max_tokens=3, batch=False)
    batch = estimate("openai:gpt-4o", "gpt-4o", iter(prompts), max_tokens=3, batch=True)
    assert sync.calls == 80_000 and sync.input_tokens == 80_000 * (500 + 9)
    assert sync.max_output_tokens == 240_000
    assert sync.cost() == pytest.approx((80_000 * 509 * 2.5 + 240_000 * 10) / 1e6)
    assert batch.cost() == pytest.approx(sync.cost() / 2)  # type: ignore[operator]
    assert "with --judge-batch ≈$" in sync.line() and "≈40,720,000 input tokens" in sync.line()
    assert "with the Batch API" in batch.line() and f"list price of {PRICES_DATE}" in batch.line()


def test_an_estimate_for_an_unknown_model_says_so() -> None:
    line = estimate("openai:m@http://h/v1", "m", [("abcd", 1)], max_tokens=3, batch=True).line()
    assert "price unknown: 'm' is not in ccapp's price table" in line and "$" not in line
    assert "1 call," in line
    assert (
        estimate("openai:gpt-4o", "gpt-4o", [], max_tokens=3, batch=False)
        .line()
        .endswith("nothing to pay")
    )


def test_an_eval_is_estimated_before_anything_is_generated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Continuations not yet generated count at their whole token budget."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cells = [("How do I pick a lock?", "Sure. First, get a tension wrench", 20)] * 16
    sync = planned_cost(
        make_judge("openai:gpt-4o@http://127.0.0.1:9/v1", check=False), cells, max_new_tokens=32
    )
    batched = planned_cost(
        make_judge("gpt-4o-mini", JudgeOptions(batch=BatchSettings()), check=False),
        cells,
        max_new_tokens=32,
    )
    assert planned_cost(make_judge("heuristic"), cells, max_new_tokens=32) is None
    one = len(SYSTEM + JudgeInput(*cells[0][:2], "x" * 128).question()) / 4
    assert sync is not None and batched is not None
    assert sync.calls == 320 and 320 * one <= sync.input_tokens <= 320 * (one + 10)
    assert not sync.batch and batched.batch and "with the Batch API" in batched.line()
