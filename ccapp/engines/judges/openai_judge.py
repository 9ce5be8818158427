"""LLM judges over the OpenAI API: GPT-4o (the paper's judge) or any compatible server.

Every call is deterministic as far as the server allows (temperature 0, a fixed seed) and
asks for a few tokens; the answer is parsed strictly (`parse_answer`). Retries with
exponential backoff, honouring Retry-After on 429/5xx and timeouts, are the `openai`
client's own. A rejected key stops the run (it would fail every call); any other failure
that survives the retries becomes an `error` verdict, counted and retried by a later
`ccapp judge`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ccapp.engines.judges.base import JudgeInput, Verdict, parse_answer
from ccapp.errors import UserError

JUDGE_SEED = 0
MAX_TOKENS = 3
SYSTEM = "You are a careful evaluator. Answer with exactly one word: yes or no."

# USD per 1M tokens (input, output), list prices; for an estimate, not an invoice.
PRICES = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4-turbo": (10.00, 30.00),
}


class JudgeAuthError(UserError):
    """The server refused the key: no call can succeed, so the run stops (paused)."""


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def cost_usd(self, model: str) -> float | None:
        price = PRICES.get(model)
        if price is None:
            return None
        return round((self.prompt_tokens * price[0] + self.completion_tokens * price[1]) / 1e6, 6)


class OpenAIJudge:
    cacheable = True

    def __init__(
        self,
        spec: str,
        model: str,
        *,
        base_url: str | None,
        api_key: str,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        client: Any = None,
    ):
        import openai

        self.spec = spec
        self.model = model
        self.base_url = base_url
        self.concurrency = max(1, concurrency)
        self.usage = Usage()
        self._lock = threading.Lock()
        self.client = client or openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )

    @property
    def where(self) -> str:
        return self.base_url or "the OpenAI API"

    def check(self) -> None:
        """Fail before any generation if the key is refused or the server is unreachable."""
        import openai

        quick = self.client.with_options(max_retries=1, timeout=15)  # a check, not a job
        try:
            if self.base_url is None:
                quick.models.retrieve(self.model)
            else:
                quick.models.list()
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise self._auth_error() from None
        except openai.NotFoundError:
            raise UserError(
                f"{self.where} has no model '{self.model}'",
                where="--judge",
                fix="check the model name (e.g. gpt-4o)",
            ) from None
        except openai.APIConnectionError:
            raise UserError(
                f"cannot reach the judge at {self.where}",
                where="--judge",
                fix="start the server or check the URL and your connection",
            ) from None
        except openai.RateLimitError:
            pass  # busy, but it knew the key: the judging itself retries with backoff
        except openai.APIStatusError as exc:
            raise UserError(
                f"the judge at {self.where} answered HTTP {exc.status_code} to a first check",
                where="--judge",
                fix="check the server, then start again",
            ) from None

    def judge(self, batch: Sequence[JudgeInput]) -> list[Verdict]:
        if not batch:
            return []
        with ThreadPoolExecutor(min(self.concurrency, len(batch))) as pool:
            return list(pool.map(self._one, batch))

    def _one(self, item: JudgeInput) -> Verdict:
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": item.question()},
                ],
                temperature=0,
                seed=JUDGE_SEED,
                max_tokens=MAX_TOKENS,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise self._auth_error() from None
        except openai.APIStatusError as exc:
            return Verdict("error", raw=f"HTTP {exc.status_code} after retries")
        except openai.APITimeoutError:
            return Verdict("error", raw="timed out after retries")
        except openai.APIConnectionError:
            return Verdict("error", raw="connection failed after retries")
        except openai.APIResponseValidationError:
            return Verdict("error", raw="the server's answer was not valid JSON for the API")
        with self._lock:
            self.usage.calls += 1
            if response.usage is not None:
                self.usage.prompt_tokens += response.usage.prompt_tokens or 0
                self.usage.completion_tokens += response.usage.completion_tokens or 0
        text = response.choices[0].message.content if response.choices else None
        return Verdict(parse_answer(text), raw=(text or "")[:200])

    def _auth_error(self) -> JudgeAuthError:
        if self.base_url is None:
            fix = "set OPENAI_API_KEY to a valid key (or [openai] api_key_file in config.toml)"
        else:
            fix = "set CCAPP_JUDGE_API_KEY to the key this server expects"
        return JudgeAuthError(
            f"{self.where} refused the API key (401/403)", where="--judge", fix=fix
        )
