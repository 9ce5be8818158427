"""A small OpenAI-compatible server on 127.0.0.1 that misbehaves on purpose.

It speaks `/v1/completions` and `/v1/chat/completions` well enough for the real `openai`
client, and a `plan` decides, per request, whether to answer, fail with 429 + Retry-After,
fail with 500, hang past the client's timeout, drop the connection, or ignore `n`.

Chat requests for a reasoning model (`reasoning`, by default OpenAI's o1/o3/o4/GPT-5 names)
get what OpenAI gives them: HTTP 400 for `max_tokens` and for a temperature other than 1,
and, when `max_completion_tokens` is below `reasoning_tokens`, an empty answer cut with
finish_reason "length" (the hidden reasoning took the whole budget).

It also speaks the Batch API as OpenAI documents it: `POST /v1/files` (multipart, purpose
batch), `GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches/{id}` and `GET
/v1/batches`. A batch is `validating` when created, `in_progress` from the first status
check, and finishes at the check after `batch_polls` such checks (never while `hold_batches`
is set) as `batch_end` says: `completed` (every line answered as a chat call would be, a line that
`batch_line_error` picks answered with HTTP 500 in the error file), `expired` or
`cancelled` (only the first `batch_runs` lines ran; the rest are in the error file with
code batch_expired / batch_cancelled), or `failed` (validation: no files). `batch_drop`
drops the connection of that many batch creations after the batch was made, as a network
that loses the answer does.
"""

from __future__ import annotations

import email.parser
import email.policy
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
    batch_polls: int = 1  # status checks that see a batch in progress before it finishes
    hold_batches: bool = False  # while set, batches stay in progress
    batch_end: str = "completed"  # completed | expired | cancelled | failed
    batch_runs: int | None = None  # with expired/cancelled: the lines that ran before
    batch_line_error: Callable[[dict[str, Any]], bool] | None = None  # body -> answer 500
    batch_drop: int = 0  # batch creations whose answer is lost (the batch exists all the same)
    files: dict[str, bytes] = field(default_factory=dict)
    batch_bodies: list[dict[str, Any]] = field(default_factory=list)  # lines batches ran
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)

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
                path = self.path.split("?")[0].rstrip("/")
                if behaviour in ("401", "500", "429"):
                    outer._respond(self, behaviour, body)
                elif "/files/" in path and path.endswith("/content"):
                    outer._file_content(self, path.split("/")[-2])
                elif "/batches" in path:
                    outer._batch_status(self, path)
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
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path.split("?")[0].rstrip("/")
                upload = path.endswith("/files")
                if upload:
                    form = outer._form(self.headers.get("Content-Type", ""), raw)
                    body: dict[str, Any] = {"POST": path, "purpose": form.get("purpose")}
                else:
                    body = json.loads(raw or b"{}")
                    if path.endswith("/batches"):
                        body["POST"] = path
                with outer._lock:
                    number = len(outer.requests)
                    outer.requests.append(body)
                    behaviour = outer.plan(number, body)
                    outer.behaviours.append(behaviour)
                time.sleep(outer.delay_s)
                if behaviour in ("401", "404", "500", "429", "drop"):
                    outer._respond(self, behaviour, body)
                elif upload:
                    outer._upload(self, form)
                elif path.endswith("/batches"):
                    outer._create_batch(self, body)
                else:
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
        elif behaviour == "404":
            self._send(handler, 404, {"error": {"message": "not found", "type": "invalid_request"}})
        elif behaviour == "one":
            self._send(handler, 200, self._completion(body, 1))
        elif "messages" in body and self.reasoning(str(body.get("model"))):
            self._reason(handler, body)
        else:
            self._send(handler, 200, self._completion(body, int(body.get("n") or 1)))

    def _reason(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        self._send(handler, *self._chat(body))

    def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON) for one chat request, as OpenAI answers it."""
        if not self.reasoning(str(body.get("model"))):
            return 200, self._completion(body, int(body.get("n") or 1))
        refusal = openai_refusal(body)
        if refusal is not None:
            return 400, {"error": refusal}
        completion = self._completion(body, 1)
        budget = body.get("max_completion_tokens")
        if budget is not None and budget < self.reasoning_tokens:
            completion["choices"][0]["message"]["content"] = ""
            completion["choices"][0]["finish_reason"] = "length"
            completion["usage"]["completion_tokens"] = budget
        return 200, completion

    # -- the Batch API ------------------------------------------------------------------

    @staticmethod
    def _form(content_type: str, raw: bytes) -> dict[str, Any]:
        """A multipart/form-data body as {field: text, "file": (filename, bytes)}."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        form: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            if part.get_filename():
                form[str(name)] = (part.get_filename(), data)
            else:
                form[str(name)] = data.decode()
        return form

    def _upload(self, handler: BaseHTTPRequestHandler, form: dict[str, Any]) -> None:
        filename, data = form.get("file") or ("", b"")
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = data
        self._send(handler, 200, self._file_object(file_id, filename, form.get("purpose", "")))

    def _file_object(self, file_id: str, filename: str, purpose: str) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(self.files[file_id]),
            "created_at": 0,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def _file_content(self, handler: BaseHTTPRequestHandler, file_id: str) -> None:
        data = self.files.get(file_id)
        if data is None:
            self._send(handler, 404, {"error": {"message": f"no file {file_id}"}})
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _create_batch(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        file_id = body.get("input_file_id", "")
        if file_id not in self.files:
            self._send(handler, 400, {"error": {"message": f"no file {file_id}"}})
            return
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            lines = self.files[file_id].decode().splitlines()
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body.get("endpoint"),
                "errors": None,
                "input_file_id": file_id,
                "completion_window": body.get("completion_window"),
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": len(self.batches),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
                "_polls": 0,
            }
            dropped = self.batch_drop > 0
            self.batch_drop -= dropped
        if dropped:
            self._respond(handler, "drop", body)
        else:
            self._send(handler, 200, self._public(self.batches[batch_id]))

    @staticmethod
    def _public(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _batch_status(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        name = path.rsplit("/", 1)[1]
        if name == "batches":  # the list, newest first
            listing = sorted(self.batches.values(), key=lambda b: -b["created_at"])
            self._send(
                handler,
                200,
                {"object": "list", "data": [self._public(b) for b in listing], "has_more": False},
            )
            return
        batch = self.batches.get(name)
        if batch is None:
            self._send(handler, 404, {"error": {"message": f"no batch {name}"}})
            return
        with self._lock:
            if batch["status"] in ("validating", "in_progress"):
                batch["status"] = "in_progress"
                batch["_polls"] += 1
                if batch["_polls"] > self.batch_polls and not self.hold_batches:
                    self._finish_batch(batch)
        self._send(handler, 200, self._public(batch))

    def _finish_batch(self, batch: dict[str, Any]) -> None:
        """Run a batch's lines and write its output and error files."""
        if self.batch_end == "failed":
            batch["status"] = "failed"
            batch["errors"] = {
                "object": "list",
                "data": [
                    {"code": "token_limit_exceeded", "message": "Enqueued token limit reached"}
                ],
            }
            return
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]].decode().splitlines()]
        runs = len(lines) if self.batch_end == "completed" else (self.batch_runs or 0)
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for number, line in enumerate(lines):
            entry: dict[str, Any] = {"id": f"batch_req_{number}", "custom_id": line["custom_id"]}
            if number >= runs:
                code = "batch_expired" if self.batch_end == "expired" else "batch_cancelled"
                errors.append(
                    entry | {"response": None, "error": {"code": code, "message": "not run"}}
                )
                continue
            self.batch_bodies.append(line["body"])
            if self.batch_line_error is not None and self.batch_line_error(line["body"]):
                status, answer = 500, {"error": {"message": "boom", "type": "server_error"}}
            else:
                status, answer = self._chat(line["body"])
            response = {"status_code": status, "request_id": f"req_{number}", "body": answer}
            (output if status == 200 else errors).append(
                entry | {"response": response, "error": None}
            )
        counts = batch["request_counts"]
        counts["completed"] = len(output)
        counts["failed"] = len(errors)
        for kind, entries in (("output_file_id", output), ("error_file_id", errors)):
            if entries:
                file_id = f"file-{len(self.files) + 1}"
                self.files[file_id] = "".join(json.dumps(e) + "\n" for e in entries).encode()
                batch[kind] = file_id
        batch["status"] = self.batch_end

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
