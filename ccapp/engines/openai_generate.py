"""Sampling through an OpenAI-compatible `/v1/completions` server (vLLM, TGI, SGLang, …).

This is how ccapp scales past one machine: the server does tensor/pipeline parallelism and
prefix caching; ccapp sends the same rendered prompts it would generate from in-process.
Servers differ in what they honour, so nothing is assumed: `n` is asked for, and paths the
server did not return (`transformers serve` returns one choice whatever `n` is) are
requested again, one at a time, with their own seeds. Retries with exponential backoff,
honouring Retry-After, are the `openai` client's own (`max_retries`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ccapp.engines.hf_generate import Cancelled, Generated, Sampling, StepCallback
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
                response = self.client.completions.create(
                    model=self.model,
                    prompt=prompt.text,
                    n=n,
                    max_tokens=sampling.max_new_tokens,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                    seed=seed + attempt,
                )
            except openai.APIConnectionError as exc:
                raise UserError(
                    f"cannot reach the generation server at {self.base_url} ({exc})",
                    where="--base-url",
                    fix="start the server or correct the URL",
                ) from None
            except openai.NotFoundError:
                raise UserError(
                    f"the server at {self.base_url} does not serve a model named '{self.model}'",
                    where="--served-model",
                    fix="pass the name the server lists at GET /v1/models",
                ) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError):
                raise UserError(
                    f"the server at {self.base_url} refused the API key",
                    fix="set CCAPP_SERVER_API_KEY to the key the server expects",
                ) from None
            except openai.APIStatusError as exc:
                raise UserError(
                    f"the generation server answered HTTP {exc.status_code} after retries ({exc.message})",
                    where="--base-url",
                    fix="check the server's log",
                ) from None
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
