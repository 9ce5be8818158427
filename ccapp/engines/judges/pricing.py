"""What an API judge costs: OpenAI's list prices, kept in this one place, and an estimate
printed before a judge run starts (so 80,000 GPT-4o calls are never a surprise).

The table is copied by hand from OpenAI's pricing page; prices move, so it carries the date
it was read and an estimate says which prices it used. The Batch API charges half of both
prices (its documented discount) in exchange for results within 24 hours.

Tokens are estimated, not counted: OpenAI's tokenizers are not available offline here
(tiktoken downloads its encodings on first use), so a prompt is taken as one token per four
characters, OpenAI's own rule of thumb for English text, plus a few tokens of chat framing
per request. Every estimated number is printed with "≈"; the output side is an upper bound
(each call may use its whole answer budget; a reasoning model's hidden tokens are billed as
output). What a run really spent is counted from the server's usage figures afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PRICES_SOURCE = "https://openai.com/api/pricing"
PRICES_DATE = "2025-08"  # when the table below was read from PRICES_SOURCE
BATCH_DISCOUNT = 0.5  # the Batch API's price is this share of the synchronous price
CHARS_PER_TOKEN = 4
FRAMING_TOKENS = 9  # per request: ~3 per message (system and user) and ~3 to start the reply
TOKENS_METHOD = f"chars/{CHARS_PER_TOKEN}"


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens."""

    input: float
    output: float


# Standard (synchronous) list prices, USD per 1M tokens (input, output).
PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-2024-05-13": Price(5.00, 15.00),  # the first snapshot kept its launch price
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "o1": Price(15.00, 60.00),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
}

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # gpt-4o-2024-08-06 is priced as gpt-4o


def price_of(model: str) -> Price | None:
    """The list price of `model`, by its name or the family of a dated snapshot; a served
    name may carry a vendor prefix (openai/gpt-4o). None: ccapp does not know the price."""
    name = model.lower().rsplit("/", 1)[-1]
    if name in PRICES:
        return PRICES[name]
    return PRICES.get(_SNAPSHOT.sub("", name))


def cost_usd(
    model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False
) -> float | None:
    """What these tokens cost at the list price (the Batch API's when `batch`)."""
    price = price_of(model)
    if price is None:
        return None
    share = BATCH_DISCOUNT if batch else 1.0
    return round(share * (prompt_tokens * price.input + completion_tokens * price.output) / 1e6, 6)


def estimate_tokens(text: str) -> int:
    """≈ tokens of `text` by the chars/4 rule (at least one for any text)."""
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Estimate:
    """The cost of a judge run before it starts: calls, ≈ tokens, and what they cost."""

    judge: str
    model: str
    calls: int
    input_tokens: int  # ≈, by TOKENS_METHOD, framing included
    max_output_tokens: int  # an upper bound: every call uses its whole answer budget
    batch: bool

    @property
    def price(self) -> Price | None:
        return price_of(self.model)

    def cost(self, *, batch: bool | None = None) -> float | None:
        """Upper-bound cost in USD (the output side is a bound, the input side ≈)."""
        return cost_usd(
            self.model,
            self.input_tokens,
            self.max_output_tokens,
            batch=self.batch if batch is None else batch,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "judge": self.judge,
            "calls": self.calls,
            "input_tokens_approx": self.input_tokens,
            "tokens_method": TOKENS_METHOD,
            "max_output_tokens": self.max_output_tokens,
            "batch": self.batch,
            "cost_usd_approx": self.cost(),
            "prices": None if self.price is None else f"{PRICES_SOURCE} ({PRICES_DATE})",
        }

    def line(self) -> str:
        """One line for the terminal and the event stream."""
        head = (
            f"cost estimate for {self.judge}: {self.calls:,} call{'' if self.calls == 1 else 's'}, "
            f"≈{self.input_tokens:,} input tokens ({TOKENS_METHOD}) and at most "
            f"{self.max_output_tokens:,} output tokens"
        )
        price = self.price
        if self.calls == 0:
            return f"{head}: nothing to pay"
        if price is None:
            return (
                f"{head}; price unknown: '{self.model}' is not in ccapp's price table "
                "(ccapp/engines/judges/pricing.py)"
            )
        listed = (
            f"{self.model} at ${price.input:.2f} in / ${price.output:.2f} out per 1M tokens, "
            f"OpenAI's list price of {PRICES_DATE}"
        )
        full, half = self.cost(batch=False), self.cost(batch=True)
        if self.batch:
            return (
                f"{head}: ≈${half:,.4f} with the Batch API ({BATCH_DISCOUNT:.0%} of ≈${full:,.4f}; "
                f"{listed})"
            )
        return f"{head}: ≈${full:,.4f} ({listed}); with --judge-batch ≈${half:,.4f}"


def estimate(
    judge: str,
    model: str,
    prompts: Iterable[tuple[str, int]],
    *,
    max_tokens: int,
    batch: bool,
) -> Estimate:
    """The estimate for asking `model` each of `prompts` (the system and user text of a
    request, and how many calls ask it), with an answer budget of `max_tokens` per call.
    `prompts` may be a generator: 80,000 questions are counted, never held at once."""
    calls = tokens = 0
    for text, times in prompts:
        calls += times
        tokens += times * (estimate_tokens(text) + FRAMING_TOKENS)
    return Estimate(judge, model, calls, tokens, calls * max_tokens, batch)
