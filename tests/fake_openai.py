"""A small OpenAI-compatible server on 127.0.0.1 that misbehaves on purpose.

It speaks `/v1/completions` and `/v1/chat/completions` well enough for the real `openai`
client, and a `plan` decides, per request, whether to answer, fail with 429 + Retry-After,
fail with 500, hang past the client's timeout, drop the connection, or ignore `n`.

Chat requests for a reasoning model (`reasoning`, by default OpenAI's o1/o3/o4/GPT-5 names)
get what OpenAI gives them: HTTP 400 for `max_tokens` and for a temperature other than 1,
and, when `max_completion_tokens` is below `reasoning_tokens`, an empty answer cut with
finish_reason "length" (the hidden reasoning took the whole budget).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Plan = Callable[[int, dict[str, Any]], str]  # (request number, body) -> behaviour name
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def openai_reasoning_model(name: str) -> bool:
    return any(name == p or name.startswith(p + "-") for p in REASONING_PREFIXES)


def openai_refusal(body: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 body OpenAI sends a reasoning model's request, or None if it is accepted."""
    if "max_tokens" in body:
        return {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    if body.get("temperature") not in (None, 1):
        return {
            "message": f"Unsupported value: 'temperature' does not support {body['temperature']} "
            "with this model. Only the default (1) value is supported.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_value",
        }
    return None


@dataclass
class FakeOpenAIServer:
    plan: Plan = lambda number, body: "ok"
    answer: Callable[[dict[str, Any], int], str] | None = None  # (body, choice index) -> text
    hang_s: float = 3.0
    delay_s: float = 0.0  # every POST answers after this long (a slow but healthy server)
    reasoning: Callable[[str], bool] = openai_reasoning_model  # models that act as o1/gpt-5
    reasoning_tokens: int = 64  # hidden tokens such a model spends before it answers
    requests: list[dict[str, Any]] = field(default_factory=list)
    behaviours: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the Authorization header of each request

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real servers do; else +40 ms per answer

            def do_GET(self) -> None:
                outer.keys.append(self.headers.get("Authorization", ""))
                body = {"GET": self.path}
                with outer._lock:
                    number = len(outer.requests)
                    outer.requests.append(body)
                    behaviour = outer.plan(number, body)
                    outer.behaviours.append(behaviour)
                path = self.path.rstrip("/")
                if behaviour in ("401", "500", "429"):
                    outer._respond(self, behaviour, body)
                elif path.endswith("/models"):
                    listing = {"object": "list", "data": [{"id": "fake", "object": "model"}]}
                    outer._send(self, 200, listing)
                elif "/models/" in path:
                    name = path.rsplit("/", 1)[1]
                    model = {"id": name, "object": "model", "created": 0, "owned_by": "test"}
                    outer._send(self, 200, model)
                else:
                    outer._send(self, 404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                outer.keys.append(self.headers.get("Authorization", ""))
                body = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
                )
                with outer._lock:
                    number = len(outer.requests)
                    outer.requests.append(body)
                    behaviour = outer.plan(number, body)
                    outer.behaviours.append(behaviour)
                time.sleep(outer.delay_s)
                outer._respond(self, behaviour, body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _respond(
        self, handler: BaseHTTPRequestHandler, behaviour: str, body: dict[str, Any]
    ) -> None:
        if behaviour == "429":
            self._send(
                handler,
                429,
                {"error": {"message": "rate limited", "type": "rate_limit"}},
                headers={"Retry-After": "1"},
            )
        elif behaviour == "500":
            self._send(handler, 500, {"error": {"message": "boom", "type": "server_error"}})
        elif behaviour == "hang":
            time.sleep(self.hang_s)
            self._send(handler, 200, self._completion(body, 1))
        elif behaviour == "drop":
            handler.close_connection = True
            handler.connection.shutdown(2)
        elif behaviour == "401":
            self._send(handler, 401, {"error": {"message": "bad key", "type": "invalid_api_key"}})
        elif behaviour == "one":
            self._send(handler, 200, self._completion(body, 1))
        elif "messages" in body and self.reasoning(str(body.get("model"))):
            self._reason(handler, body)
        else:
            self._send(handler, 200, self._completion(body, int(body.get("n") or 1)))

    def _reason(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        refusal = openai_refusal(body)
        if refusal is not None:
            self._send(handler, 400, {"error": refusal})
            return
        completion = self._completion(body, 1)
        budget = body.get("max_completion_tokens")
        if budget is not None and budget < self.reasoning_tokens:
            completion["choices"][0]["message"]["content"] = ""
            completion["choices"][0]["finish_reason"] = "length"
            completion["usage"]["completion_tokens"] = budget
        self._send(handler, 200, completion)

    def _completion(self, body: dict[str, Any], n: int) -> dict[str, Any]:
        choices = []
        for index in range(n):
            if self.answer is not None:
                text = self.answer(body, index)
            else:
                seed = hashlib.sha256(
                    f"{body.get('prompt')}|{body.get('seed')}|{index}".encode()
                ).hexdigest()
                text = f" continuation {seed[:8]}"
            if "messages" in body:
                choices.append(
                    {
                        "index": index,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                )
            else:
                choices.append(
                    {"index": index, "text": text, "finish_reason": "length", "logprobs": None}
                )
        kind = "chat.completion" if "messages" in body else "text_completion"
        return {
            "id": "cmpl-1",
            "object": kind,
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": choices,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5 * n, "total_tokens": 10 + 5 * n},
        }

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass
