"""Sampling through an OpenAI-compatible `/v1/completions` server (vLLM, TGI, SGLang, …).

This is how ccapp scales past one machine: the server does tensor/pipeline parallelism and
prefix caching; ccapp sends the same rendered prompts it would generate from in-process.
Servers differ in what they honour, so nothing is assumed: `n` is asked for, and paths the
server did not return (`transformers serve` returns one choice whatever `n` is) are
requested again, one at a time, with their own seeds. Retries with exponential backoff,
honouring Retry-After, are the `openai` client's own (`max_retries`).

The run's resolved top_k and repetition_penalty (ccapp.engines.generation.sampling) go in the request
body beside temperature and top_p, as vLLM, SGLang and llama.cpp's server read them, so a
server samples the distribution the hf engine samples instead of its own defaults (vLLM
would apply generation_config.json, others nothing). A server that refuses the two fields
(HTTP 400/422: `transformers serve` rejects unknown fields) is asked again without them;
`server_refused` then names them, and the run records that the server's own values applied.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ccapp.engines.generation.types import Cancelled, Generated, Sampling, StepCallback
from ccapp.errors import UserError

MAX_ROUNDS = 4  # asks for missing paths before giving up on a server that ignores n


@dataclass(frozen=True)
class TextPrompt:
    key: int
    text: str
    paths: Sequence[int]


class OpenAIGenerator:
    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: Any,
        *,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout_s: float = 120.0,
        client: Any = None,
    ):
        import openai

        self.base_url = base_url
        self.model = model
        self.tokenizer = tokenizer
        self.concurrency = max(1, concurrency)
        self.server_refused: tuple[str, ...] = ()  # sampling fields the server would not take
        self.client = client or openai.OpenAI(
            base_url=base_url,
            api_key=os.environ.get("CCAPP_SERVER_API_KEY") or "none",  # never the OpenAI key
            max_retries=max_retries,
            timeout=timeout_s,
        )

    def generate(
        self,
        prompts: Sequence[TextPrompt],
        sampling: Sampling,
        seed: int,
        *,
        on_step: StepCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Generated]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = [
                pool.submit(self._one_prompt, p, sampling, seed + 7919 * i, cancel)
                for i, p in enumerate(prompts)
            ]
            results = [g for f in futures for g in f.result()]
        if on_step is not None:
            on_step([(g.key, g.path, g.text) for g in results])
        return results

    def _one_prompt(
        self, prompt: TextPrompt, sampling: Sampling, seed: int, cancel: threading.Event | None
    ) -> list[Generated]:
        import openai

        choices: list[Any] = []
        for attempt in range(MAX_ROUNDS + len(prompt.paths)):
            if cancel is not None and cancel.is_set():
                raise Cancelled
            missing = len(prompt.paths) - len(choices)
            if missing <= 0:
                break
            n = missing if attempt < MAX_ROUNDS else 1
            try:
                response = self._create(prompt.text, n, sampling, seed + attempt)
            except openai.APIError as exc:
                raise self.server_error(exc) from None
            choices.extend(sorted(response.choices, key=lambda c: c.index)[:missing])
        if len(choices) < len(prompt.paths):
            raise UserError(
                f"the server at {self.base_url} returned {len(choices)} of {len(prompt.paths)} paths",
                fix="check that it supports /v1/completions with n",
            )
        results = []
        for path, choice in zip(prompt.paths, choices):
            text = choice.text or ""
            new_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            reason = "length" if choice.finish_reason == "length" else "eos"
            results.append(Generated(prompt.key, path, text, new_tokens, reason))
        return results

    def server_error(self, exc: Exception) -> Exception:
        """What a failed request means to the user, naming the setting to fix (the openai
        client has already retried what can be retried)."""
        import openai

        if isinstance(exc, openai.APIConnectionError):
            problem, where, fix = (
                f"cannot reach the generation server at {self.base_url} ({exc})",
                "--base-url",
                "start the server or correct the URL",
            )
        elif isinstance(exc, openai.NotFoundError):
            problem, where, fix = (
                f"the server at {self.base_url} does not serve a model named '{self.model}'",
                "--served-model",
                "pass the name the server lists at GET /v1/models",
            )
        elif isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            problem, where, fix = (
                f"the server at {self.base_url} refused the API key",
                None,
                "set CCAPP_SERVER_API_KEY to the key the server expects",
            )
        elif isinstance(exc, openai.APIStatusError):
            problem, where, fix = (
                f"the generation server answered HTTP {exc.status_code} after retries "
                f"({exc.message})",
                "--base-url",
                "check the server's log",
            )
        else:  # a response the client could not read: not the user's to fix
            return exc
        return UserError(problem, where=where, fix=fix)

    def _create(self, text: str, n: int, sampling: Sampling, seed: int) -> Any:
        """One completions request; without the extra sampling fields if the server refuses
        them (then `server_refused` says so, and later requests leave them out)."""
        import openai

        def create(extra: dict[str, Any] | None) -> Any:
            return self.client.completions.create(
                model=self.model,
                prompt=text,
                n=n,
                max_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                seed=seed,
                extra_body=extra,
            )

        if self.server_refused:
            return create(None)
        try:
            return create(server_sampling_fields(sampling))
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            response = create(None)  # a second refusal is the caller's error to report
            self.server_refused = tuple(server_sampling_fields(sampling))
            return response


def server_sampling_fields(sampling: Sampling) -> dict[str, Any]:
    """top_k and repetition_penalty as OpenAI-compatible servers take them (-1: no top-k,
    the value every vLLM and SGLang version reads as off)."""
    return {
        "top_k": sampling.top_k if sampling.top_k > 0 else -1,
        "repetition_penalty": sampling.repetition_penalty,
    }
