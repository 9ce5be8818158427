"""LLM judges over the OpenAI API: GPT-4o (the paper's judge) or any compatible server.

Every call is deterministic as far as the server allows (temperature 0, a fixed seed) and
asks for a few tokens; the answer is parsed strictly (`parse_answer`). Retries with
exponential backoff, honouring Retry-After on 429/5xx and timeouts, are the `openai`
client's own. A rejected key stops the run (it would fail every call); any other failure
that survives the retries becomes an `error` verdict, counted and retried by a later
`ccapp judge`.

Models differ in what a request may say. OpenAI's own API takes `max_completion_tokens`
for every current chat model, and its reasoning models (o1/o3/o4, GPT-5) take nothing
else; compatible servers (vLLM, llama.cpp, TGI) know `max_tokens`. So the API gets the
first, other servers the second, and a 400 naming the parameter switches to the other
once and asks again; a 400 refusing temperature 0 (reasoning models accept only their
default, 1) drops it and says so. Reasoning models also spend hidden tokens before they
answer: a budget they cannot answer in yields empty, length-cut answers, and the run stops
with one message naming `--judge-max-tokens` instead of storing a row per call.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ccapp.engines.judges.base import JudgeInput, Verdict, parse_answer
from ccapp.errors import UserError

if TYPE_CHECKING:
    from ccapp.engines.judges.openai_batch import BatchSettings

JUDGE_SEED = 0
MAX_TOKENS = 3  # "yes" / "no" and a full stop
# Reasoning models think in hidden tokens first; their answer needs room after that.
REASONING_MAX_TOKENS = 1024
REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
# Stop when at least this share of a batch's answers is empty and cut by the budget.
BUDGET_STOP_SHARE = 0.5
TOKEN_PARAMETERS = ("max_tokens", "max_completion_tokens")
SYSTEM = "You are a careful evaluator. Answer with exactly one word: yes or no."


class JudgeStopped(UserError):
    """The judge cannot answer as configured, so every further call would fail the same way:
    the run stops (paused, resumable once the setting is fixed) instead of storing errors."""


class JudgeAuthError(JudgeStopped):
    """The server refused the key: no call can succeed, so the run stops (paused)."""


class JudgeBudgetError(JudgeStopped):
    """The model used its whole token budget without answering (reasoning tokens)."""


def is_reasoning_model(model: str) -> bool:
    """o1/o3/o4/GPT-5 by name (a served name may carry a vendor prefix: openai/gpt-5)."""
    name = model.lower().rsplit("/", 1)[-1]
    return any(name == m or name.startswith(m + "-") for m in REASONING_MODELS)


def default_max_tokens(model: str) -> int:
    return REASONING_MAX_TOKENS if is_reasoning_model(model) else MAX_TOKENS


@dataclass
class RequestSettings:
    """What each chat request sends; changed (once, under a lock) by what the server refuses."""

    token_parameter: str
    max_tokens: int
    temperature: float | None = 0.0  # None: left out, the model's default

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_parameter": self.token_parameter,
            "max_tokens": self.max_tokens,
            "temperature": "model default" if self.temperature is None else self.temperature,
        }


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def cost_usd(self, model: str, *, batch: bool = False) -> float | None:
        """At the list price (ccapp.engines.judges.pricing); the Batch API's when `batch`."""
        from ccapp.engines.judges.pricing import cost_usd

        return cost_usd(model, self.prompt_tokens, self.completion_tokens, batch=batch)


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
        max_tokens: int | None = None,
        batch: BatchSettings | None = None,
        client: Any = None,
    ):
        """`batch`: an openai_batch.BatchSettings to judge stored runs through the Batch API
        (half the price, results within 24 hours); None asks call by call."""
        import openai

        self.spec = spec
        self.model = model
        self.base_url = base_url
        self.concurrency = max(1, concurrency)
        self.usage = Usage()
        self.batch = batch
        self._lock = threading.Lock()
        self.settings = RequestSettings(
            # OpenAI's API takes max_completion_tokens for all its chat models; other
            # servers are asked in the older spelling until they refuse it.
            "max_completion_tokens" if base_url is None else "max_tokens",
            max_tokens or default_max_tokens(model),
        )
        self.adjustments: list[str] = []  # what the server refused and what was sent instead
        self._settled = False  # a first call has gone through with the current settings
        self._refused: set[str] = set()
        self.client = client or openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )

    @property
    def settled(self) -> bool:
        """Whether a call has gone through with the current settings (so a batch of them
        will not be refused as a whole)."""
        return self._settled

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
        except openai.RateLimitError:
            pass  # busy, but it knew the key: the judging itself retries with backoff
        except (openai.NotFoundError, openai.APIConnectionError, openai.APIStatusError) as exc:
            raise self._check_failed(exc) from None

    def _check_failed(self, exc: Exception) -> UserError:
        """The message for a first check that failed: no such model, no server, or another
        HTTP status."""
        import openai

        if isinstance(exc, openai.NotFoundError):
            problem = f"{self.where} has no model '{self.model}'"
            fix = "check the model name (e.g. gpt-4o)"
        elif isinstance(exc, openai.APIStatusError):
            problem = f"the judge at {self.where} answered HTTP {exc.status_code} to a first check"
            fix = "check the server, then start again"
        else:
            problem = f"cannot reach the judge at {self.where}"
            fix = "start the server or check the URL and your connection"
        return UserError(problem, where="--judge", fix=fix)

    def judge(self, batch: Sequence[JudgeInput]) -> list[Verdict]:
        """Verdicts for a batch, `concurrency` calls at a time, checking the budget after each
        round of two (a file of 10K rows stops after one round, not after 10K calls). Until
        one call has gone through, the first item goes alone, so a parameter the server
        refuses is learnt from one 400, not from `concurrency` of them."""
        answers: list[tuple[Verdict, bool]] = []
        start = checked = 0
        if batch and not self._settled:
            answers.append(self._ask(batch[0]))
            self._settled = True
            start = 1
        step = 2 * self.concurrency
        while start < len(batch):
            round_ = batch[start : start + step]
            with ThreadPoolExecutor(min(self.concurrency, len(round_))) as pool:
                answers += list(pool.map(self._ask, round_))
            self.check_budget([cut for _, cut in answers[checked:]])
            checked, start = len(answers), start + step
        self.check_budget([cut for _, cut in answers[checked:]])  # a batch of the first alone
        return [verdict for verdict, _ in answers]

    def check_budget(self, cut: list[bool]) -> None:
        """Stop when the model mostly runs out of tokens before it says anything: every
        further call would be paid for and stored as unparsed."""
        if not cut or sum(cut) < BUDGET_STOP_SHARE * len(cut):
            return
        reasoning = (
            " (it spends hidden reasoning tokens first)" if is_reasoning_model(self.model) else ""
        )
        raise JudgeBudgetError(
            f"the judge {self.model} used all {self.settings.max_tokens} tokens of its "
            f"budget without answering in {sum(cut)} of {len(cut)} calls{reasoning}",
            where="--judge-max-tokens",
            fix=f"raise --judge-max-tokens (now {self.settings.max_tokens}; e.g. "
            f"{max(REASONING_MAX_TOKENS, 4 * self.settings.max_tokens)})",
        )

    def _ask(self, item: JudgeInput) -> tuple[Verdict, bool]:
        """One verdict, asking again (at most once per setting) when the server refuses a
        parameter it can do without; and whether the answer was empty and cut by the budget."""
        import openai

        for _ in range(4):  # a token spelling and temperature to learn, and a spare
            with self._lock:
                settings = replace(self.settings)
            try:
                return self._one(item, settings)
            except openai.BadRequestError as exc:
                if not self._adapt(exc, settings):
                    return Verdict("error", raw=f"HTTP {exc.status_code} after retries"), False
        return Verdict("error", raw="HTTP 400: the server refused every parameter set"), False

    def _adapt(self, exc: Any, sent: RequestSettings) -> bool:
        """Change what the server refused; True if the call is worth asking again."""
        named = (sent.token_parameter, "temperature")  # servers without `param` name it
        refused = str(exc.param or "") or next((n for n in named if f"'{n}'" in str(exc)), "")
        with self._lock:
            current = self.settings
            if refused in TOKEN_PARAMETERS:
                if current.token_parameter != sent.token_parameter:
                    return True  # another call switched it meanwhile
                other = next(p for p in TOKEN_PARAMETERS if p != refused)
                if refused != sent.token_parameter or other in self._refused:
                    return False  # both spellings refused: nothing left to try
                self._refused.add(refused)
                current.token_parameter = other
                self.adjustments.append(
                    f"{self.where} refused '{refused}' for {self.model}: sent '{other}' instead"
                )
                return True
            if refused == "temperature" and sent.temperature is not None:
                if current.temperature is not None:
                    current.temperature = None
                    self.adjustments.append(
                        f"{self.model} accepts only its default temperature (1): temperature 0 "
                        "was dropped, so its verdicts may vary from call to call"
                    )
                return True
        return False

    def request_body(self, item: JudgeInput, settings: RequestSettings) -> dict[str, Any]:
        """The chat.completions body for one item: what a call sends, and what each line of
        a Batch API requests file holds."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": item.question()},
            ],
            "seed": JUDGE_SEED,
            settings.token_parameter: settings.max_tokens,
        }
        if settings.temperature is not None:
            body["temperature"] = settings.temperature
        return body

    def _one(self, item: JudgeInput, settings: RequestSettings) -> tuple[Verdict, bool]:
        import openai

        try:
            response = self.client.chat.completions.create(**self.request_body(item, settings))
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise self._auth_error() from None
        except openai.BadRequestError:
            raise  # _ask decides: a parameter to change, or an error verdict
        except openai.APIStatusError as exc:
            return Verdict("error", raw=f"HTTP {exc.status_code} after retries"), False
        except openai.APITimeoutError:
            return Verdict("error", raw="timed out after retries"), False
        except openai.APIConnectionError:
            return Verdict("error", raw="connection failed after retries"), False
        except openai.APIResponseValidationError:
            return Verdict("error", raw="the server's answer was not valid JSON for the API"), False
        return self.read_answer(response, settings.max_tokens, self.usage)

    def read_answer(self, response: Any, max_tokens: int, usage: Usage) -> tuple[Verdict, bool]:
        """The verdict in a chat completion (a call's, or one line of a batch's output), and
        whether the answer was empty and cut by the budget; its tokens are added to `usage`."""
        with self._lock:
            usage.calls += 1
            if response.usage is not None:
                usage.prompt_tokens += response.usage.prompt_tokens or 0
                usage.completion_tokens += response.usage.completion_tokens or 0
        choice = response.choices[0] if response.choices else None
        text = choice.message.content if choice is not None else None
        if not (text or "").strip() and choice is not None and choice.finish_reason == "length":
            raw = f"no answer within {max_tokens} tokens (finish_reason length)"
            # Only hidden reasoning makes a budget run out before any text: a plain model
            # that wrote blanks answered badly (unparsed), and more tokens would not help.
            return Verdict("unparsed", raw=raw), self._reasons(response)
        return Verdict(parse_answer(text), raw=(text or "")[:200]), False

    def _reasons(self, response: Any) -> bool:
        """Whether this model spends hidden reasoning tokens (by name, or as the server says)."""
        details = getattr(response.usage, "completion_tokens_details", None)
        return is_reasoning_model(self.model) or bool(getattr(details, "reasoning_tokens", 0))

    def _auth_error(self) -> JudgeAuthError:
        if self.base_url is None:
            fix = "set OPENAI_API_KEY to a valid key (or [openai] api_key_file in config.toml)"
        else:
            fix = "set CCAPP_JUDGE_API_KEY to the key this server expects"
        return JudgeAuthError(
            f"{self.where} refused the API key (401/403)", where="--judge", fix=fix
        )
