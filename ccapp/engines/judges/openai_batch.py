"""Judging a stored run through OpenAI's Batch API: half the price, results within 24 hours.

The paper's workload is 500 requests × 8 prefix lengths × 20 paths = 80,000 GPT-4o calls
per model. `ccapp judge RUN --judge gpt-4o --judge-batch` writes them as a requests file (one
chat.completions body per continuation, the same body a synchronous call sends, custom_id
`ccapp-c<continuation id>`), uploads it (`files.create(purpose="batch")`), creates a batch
(`/v1/chat/completions`, window 24h), polls it with growing waits, reads the output and
error files and stores each verdict once, parsed as the synchronous judge parses it.

Nothing is paid for twice:
- Every step is in the store as soon as it happens (table judge_batches): the uploaded
  file's id before the batch is asked for, the batch's id as soon as it exists. A killed
  ccapp, run again with the same command, finds the open batch and waits for it; a batch
  that was created but whose id never reached the store is found again by its input file
  (`batches.list`), so it is not created twice.
- The verdicts of a batch, their cache entries, the tokens they cost and the batch's
  `stored` state are one transaction.
- Verdicts already in the cache are stored without asking; the first request of a command
  goes alone, synchronously (its verdict is kept), so that a parameter the server refuses
  (a reasoning model's temperature, the token parameter's name) is learnt from one call,
  not from a whole batch of 400s.

What does not come back is handled per kind: requests that expired with the window or were
cancelled, or are missing from both files, are asked again in a new, smaller batch (at most
`rounds` batches in all; what is still missing then is counted as left and stays unjudged,
for the next `ccapp judge`); a request the server answered with an error is stored as an
error verdict and counted (a later `ccapp judge` asks it again, as it does every error); a
batch that fails validation as a whole stops the command with the server's message.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ccapp.engines.events import EVENTS_VERSION, Log, Progress, RunStarted, Sink
from ccapp.engines.generation.types import Cancelled
from ccapp.engines.judges.base import Verdict
from ccapp.engines.judges.openai_judge import OpenAIJudge, RequestSettings, Usage
from ccapp.engines.judges.runner import (
    JudgeRunner,
    announce_cost,
    cost_estimate,
    judge_input,
    look_up,
    remembering,
)
from ccapp.errors import UserError
from ccapp.store import Store, batches
from ccapp.store import evals as rows_store

ENDPOINT: Final = "/v1/chat/completions"
WINDOW: Final = "24h"
CUSTOM_ID = "ccapp-c{}"  # a continuation's id in the store: stable across retries and resumes
ASK_AGAIN = ("batch_expired", "batch_cancelled")  # error codes of requests never run
FINISHED = ("completed", "expired", "cancelled", "failed")  # OpenAI's final batch states
CREATE_ATTEMPTS = 3


@dataclass(frozen=True)
class BatchSettings:
    """How a Batch API judging job waits and splits (the API's limits are the defaults)."""

    poll_s: float = 5.0  # the first wait between status checks (a failed validation shows soon)
    max_poll_s: float = 600.0  # waits grow ×1.5 while nothing changes, up to this
    max_requests: int = 50_000  # requests per batch (the API takes 50,000)
    max_bytes: int = 190 * 2**20  # bytes per requests file (the API takes 200 MB)
    rounds: int = 3  # batches per request: the first and two re-asks of what expired


@dataclass
class BatchCounts:
    """What a Batch API judging job did, for the summary."""

    batches: list[str] = field(default_factory=list)  # every batch id waited for
    resumed: int = 0  # of those, batches an earlier command had left open
    cached: int = 0  # verdicts taken from the cache, no request
    probe: int = 0  # requests asked synchronously first (their verdicts kept)
    requests: int = 0  # requests put in batches (re-asks included)
    stored: int = 0  # verdicts stored from batch output (errors included)
    errors: int = 0  # of those, requests the server answered with an error
    re_asked: int = 0  # requests that expired or went missing and were put in a new batch
    left: int = 0  # requests still without a verdict after the last round

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": list(self.batches),
            "resumed": self.resumed,
            "cached": self.cached,
            "probe": self.probe,
            "requests": self.requests,
            "stored": self.stored,
            "errors": self.errors,
            "re_asked": self.re_asked,
            "left": self.left,
        }


class BatchJudging:
    """One `ccapp judge RUN --judge-batch` job: its store, judge, sink and cancel event."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        judge: OpenAIJudge,
        sink: Sink,
        cancel: threading.Event | None = None,
    ):
        self.store = store
        self.run_id = run_id
        self.judge = judge
        self.settings: BatchSettings = judge.batch or BatchSettings()
        self.sink = sink
        self.cancel = cancel or threading.Event()
        self.runner = JudgeRunner(judge, run_id, sink)
        self.counts = BatchCounts()
        self.total = rows_store.count_continuations(store, run_id)
        self._done = 0  # continuations with a verdict of this judge, for progress
        self._rows: dict[int, rows_store.Unjudged] = {}  # continuation id -> row, as needed

    # -- the job ------------------------------------------------------------------------

    def run(
        self, *, redo: tuple[str, ...], everything: bool, announce_start: bool = True
    ) -> dict[str, Any]:
        spec = self.judge.spec
        pending = batches.open_batches(self.store, self.run_id, spec)
        if pending:  # an earlier command's work: finished as it was asked, not chosen again
            rows = rows_store.unjudged(self.store, self.run_id, spec, redo=())
        else:
            rows = rows_store.unjudged(
                self.store, self.run_id, spec, redo=redo, everything=everything
            )
        self._done = self.total - len(rows)
        if announce_start:
            self.sink.emit(
                RunStarted(
                    v=EVENTS_VERSION,
                    kind="judge",
                    config={"judge": spec, "batch": True},
                    totals={"continuations": self.total, "todo": len(rows)},
                )
            )
        if pending:
            ids = ", ".join(b.batch_id or f"file {b.input_file_id}" for b in pending)
            self._log(f"resuming {len(pending)} unfinished batch(es) of {spec}: {ids}")
            self.counts.resumed = len(pending)
            self._rows = {r.continuation_id: r for r in self._all_rows()}
            self._wait(pending)
            rows = rows_store.unjudged(self.store, self.run_id, spec, redo=())
        estimate = self._judge_rounds(rows, use_cache=not everything)
        result: dict[str, Any] = {
            "judged": self.counts.stored + self.counts.cached + self.counts.probe,
            "total": self.total,
            "batch": self.counts.as_dict(),
        }
        if estimate is not None:
            result["cost_estimate"] = estimate.as_dict()
        self._log(
            f"batch judging done: {self.counts.stored} verdicts from {len(self.counts.batches)} "
            f"batch(es), {self.counts.cached} from the cache, {self.counts.probe} asked "
            f"directly; {self.counts.errors} errors, {self.counts.re_asked} re-asked, "
            f"{self.counts.left} left unjudged",
            level="warning" if self.counts.left or self.counts.errors else "info",
        )
        return result

    def _judge_rounds(self, rows: list[rows_store.Unjudged], *, use_cache: bool) -> Any:
        """Batches for `rows`, then smaller ones for what expired or went missing."""
        first_estimate = None
        for round_ in range(1, self.settings.rounds + 1):
            rows = self._take_cached(rows, use_cache=use_cache)
            if not rows:
                return first_estimate
            estimate = cost_estimate(
                self.store, self.judge, [judge_input(r) for r in rows], use_cache=False, batch=True
            )
            announce_cost(self.sink, estimate)
            first_estimate = first_estimate or estimate
            if not self.judge.settled:  # learn what the server refuses from one call
                self.runner.judge_rows(self.store, rows[:1], use_cache=False)
                self.counts.probe += 1
                self._progress(1)
                rows = rows[1:]
                if not rows:
                    return first_estimate
            self._rows.update({r.continuation_id: r for r in rows})
            answered = self._wait(self._submit(rows))
            rows = [r for r in rows if r.continuation_id not in answered]
            if rows and round_ < self.settings.rounds:
                self.counts.re_asked += len(rows)
                self._log(
                    f"{len(rows)} requests expired or went missing: asking them again in a "
                    f"new batch (batch round {round_ + 1} of {self.settings.rounds})",
                    level="warning",
                )
            use_cache = True
        self.counts.left = len(rows)
        return first_estimate

    def _take_cached(
        self, rows: list[rows_store.Unjudged], *, use_cache: bool
    ) -> list[rows_store.Unjudged]:
        """Store the verdicts the cache already holds; return the rows still to ask."""
        keys, cached = look_up(
            self.store, self.judge, [judge_input(r) for r in rows], use_cache=use_cache
        )
        hits = [(r, Verdict(*cached[k])) for r, k in zip(rows, keys) if k in cached]
        if hits:
            self.runner.store_answers(
                self.store,
                [r for r, _ in hits],
                [v for _, v in hits],
                remember=lambda: None,
                calls=0,
                spent=None,
            )
            self.counts.cached += len(hits)
            self._progress(len(hits))
        return [r for r, k in zip(rows, keys) if k not in cached]

    # -- submitting ---------------------------------------------------------------------

    def _submit(self, rows: list[rows_store.Unjudged]) -> list[batches.StoredBatch]:
        """Upload `rows` as one or more requests files and create a batch for each."""
        settings = self.judge.settings
        submitted = []
        for part in self._parts(rows, settings):
            data = b"".join(line for _, line in part)
            uploaded = self._upload(data, len(part))
            stored = batches.add_upload(
                self.store,
                self.run_id,
                self.judge.spec,
                uploaded,
                len(part),
                {
                    "token_parameter": settings.token_parameter,
                    "max_tokens": settings.max_tokens,
                    "temperature": settings.temperature,
                },
            )
            self.counts.requests += len(part)
            submitted.append(self._create(stored, look_first=False))
        return submitted

    def _parts(
        self, rows: Sequence[rows_store.Unjudged], settings: RequestSettings
    ) -> Iterator[list[tuple[int, bytes]]]:
        """(continuation id, JSONL line) lists within the API's limits per batch."""
        part: list[tuple[int, bytes]] = []
        size = 0
        for row in rows:
            line = (
                json.dumps(
                    {
                        "custom_id": CUSTOM_ID.format(row.continuation_id),
                        "method": "POST",
                        "url": ENDPOINT,
                        "body": self.judge.request_body(judge_input(row), settings),
                    },
                    ensure_ascii=False,
                )
                + "\n"
            ).encode()
            if part and (
                len(part) >= self.settings.max_requests
                or size + len(line) > self.settings.max_bytes
            ):
                yield part
                part, size = [], 0
            part.append((row.continuation_id, line))
            size += len(line)
        if part:
            yield part

    def _upload(self, data: bytes, requests: int) -> str:
        import openai

        name = f"ccapp-run{self.run_id}-{int(time.time())}.jsonl"
        self._log(
            f"uploading {requests} requests ({len(data) / 1024:,.0f} KiB) to {self.judge.where}"
        )
        try:
            uploaded = self.judge.client.files.create(
                file=(name, io.BytesIO(data), "application/jsonl"), purpose="batch"
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise self.judge._auth_error() from None
        except openai.NotFoundError:
            raise self._no_batch_api() from None
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise self._cannot("upload the requests file", exc) from None
        return str(uploaded.id)

    def _create(self, stored: batches.StoredBatch, *, look_first: bool) -> batches.StoredBatch:
        """The batch for an uploaded file: one found by its file (made by a command killed
        before it stored the id, or by a create whose answer was lost), or a new one; its
        id is stored at once."""
        import openai

        quick = self.judge.client.with_options(max_retries=0)  # a retry could create two
        for attempt in range(CREATE_ATTEMPTS):
            found = self._find(stored.input_file_id) if look_first or attempt else None
            if found is not None:
                return self._created(stored, found, "found again")
            try:
                batch = quick.batches.create(
                    input_file_id=stored.input_file_id,
                    endpoint=ENDPOINT,
                    completion_window=WINDOW,
                    metadata={"ccapp_run": str(self.run_id), "ccapp_judge": self.judge.spec[:512]},
                )
            except (openai.AuthenticationError, openai.PermissionDeniedError):
                raise self.judge._auth_error() from None
            except openai.NotFoundError:
                raise self._no_batch_api() from None
            except (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError):
                if attempt + 1 == CREATE_ATTEMPTS:
                    raise self._cannot("create the batch", None) from None
                self._sleep(min(self.settings.poll_s, 2.0**attempt))
                continue  # it may exist even so: looked for first, next time round
            except openai.APIStatusError as exc:
                raise self._cannot("create the batch", exc) from None
            return self._created(stored, batch, "created")
        raise self._cannot("create the batch", None)

    def _created(self, stored: batches.StoredBatch, batch: Any, how: str) -> batches.StoredBatch:
        row = batches.update(self.store, stored.id, batch_id=batch.id, state=batch.status)
        self._log(
            f"batch {batch.id} {how} for {stored.requests} requests (results within {WINDOW}; "
            f"a killed ccapp resumes it with the same command)"
        )
        return row

    def _find(self, input_file_id: str) -> Any:
        """The newest batches, looked through for one made from this file."""
        import openai

        try:
            for seen, batch in enumerate(self.judge.client.batches.list(limit=100)):
                if batch.input_file_id == input_file_id:
                    return batch
                if seen >= 100:
                    break
        except openai.NotFoundError:
            raise self._no_batch_api() from None
        except (openai.APIConnectionError, openai.APIStatusError):
            return None
        return None

    # -- waiting and reading ------------------------------------------------------------

    def _wait(self, waiting: list[batches.StoredBatch]) -> set[int]:
        """Poll `waiting` until each has finished, storing each one's verdicts as it does;
        returns the continuations that got an answer (a verdict or an error)."""
        answered: set[int] = set()
        waiting = list(waiting)
        delay = self.settings.poll_s
        last: list[tuple[str, int, int]] = []
        while waiting:
            for stored in list(waiting):
                stored = self._refresh(stored)
                if stored.state in FINISHED:
                    answered |= self._collect(stored)
                    waiting = [b for b in waiting if b.id != stored.id]
                else:
                    waiting = [stored if b.id == stored.id else b for b in waiting]
            now = [(b.state, b.completed, b.failed) for b in waiting]
            self._progress(0, in_flight=sum(b.completed + b.failed for b in waiting))
            if not waiting:
                break
            delay = (
                self.settings.poll_s if now != last else min(delay * 1.5, self.settings.max_poll_s)
            )
            last = now
            self._sleep(delay)
        return answered

    def _refresh(self, stored: batches.StoredBatch) -> batches.StoredBatch:
        """The batch's state at the server, into the store; a change is logged."""
        import openai

        if stored.batch_id is None:  # uploaded by a command killed before the batch existed
            stored = self._create(stored, look_first=True)
        assert stored.batch_id is not None
        if stored.batch_id not in self.counts.batches:
            self.counts.batches.append(stored.batch_id)
        try:
            batch = self.judge.client.batches.retrieve(stored.batch_id)
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise self.judge._auth_error() from None
        except openai.NotFoundError:
            raise UserError(
                f"{self.judge.where} no longer knows batch {stored.batch_id}",
                where="--judge-batch",
                fix="check the account the key belongs to; `ccapp runs delete` is not needed: "
                "the run's continuations stay, judge them again",
            ) from None
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            self._log(f"could not check batch {stored.batch_id} ({exc}); trying again", "warning")
            return stored
        counts = batch.request_counts
        errors = "; ".join(
            f"{e.code}: {e.message}" for e in (batch.errors.data or [] if batch.errors else [])
        )
        row = batches.update(
            self.store,
            stored.id,
            state=batch.status,
            completed=(counts.completed if counts else 0) or 0,
            failed=(counts.failed if counts else 0) or 0,
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            error=errors or None,
        )
        if (row.state, row.completed, row.failed) != (
            stored.state,
            stored.completed,
            stored.failed,
        ):
            self._log(
                f"batch {row.batch_id}: {row.state}, {row.completed} of {row.requests} done"
                + (f", {row.failed} failed" if row.failed else "")
            )
        return row

    def _collect(self, stored: batches.StoredBatch) -> set[int]:
        """Read a finished batch's files and store its verdicts (one transaction, with the
        batch marked stored); returns the continuations answered."""
        if stored.state == "failed":
            batches.update(self.store, stored.id, state="failed")
            raise UserError(
                f"batch {stored.batch_id} failed at {self.judge.where}: "
                f"{stored.error or 'no reason given'}",
                where="--judge-batch",
                fix="fix what the message names and run the same command again (a new batch is "
                "made; nothing of the failed one was charged)",
            )
        lines = itertools.chain(
            self._lines(stored.output_file_id), self._lines(stored.error_file_id)
        )
        settings = stored.settings
        spent = Usage()
        answers: dict[int, tuple[Verdict, bool]] = {}
        for obj in lines:
            custom_id = str(obj.get("custom_id", ""))
            if not custom_id.startswith(CUSTOM_ID.format("")):
                continue
            try:
                continuation_id = int(custom_id.removeprefix(CUSTOM_ID.format("")))
            except ValueError:
                continue
            if continuation_id not in self._rows:
                continue  # not a continuation of this run any more (deleted since)
            answer = self._answer(obj, int(settings.get("max_tokens") or 0), spent)
            if answer is not None:
                answers[continuation_id] = answer
        ids = list(answers)
        rows = [self._rows[i] for i in ids]
        verdicts = [answers[i][0] for i in ids]
        keys, _ = look_up(self.store, self.judge, [judge_input(r) for r in rows], use_cache=False)
        self.runner.store_answers(
            self.store,
            rows,
            verdicts,
            remember=remembering(self.store, self.judge, list(zip(keys, verdicts))),
            calls=spent.calls,
            spent=spent,
            batch=True,
            then=lambda: batches.update(self.store, stored.id, state="stored"),
        )
        self.counts.stored += len(rows)
        self.counts.errors += sum(v.label == "error" for v in verdicts)
        self._progress(len(rows))
        self.judge.check_budget([cut for _, cut in answers.values()])
        return set(ids)

    def _answer(
        self, obj: dict[str, Any], max_tokens: int, spent: Usage
    ) -> tuple[Verdict, bool] | None:
        """One output or error line as (verdict, cut by the budget); None for a request
        that never ran (expired, cancelled) and is to be asked again."""
        from openai.types.chat import ChatCompletion

        response = obj.get("response") or None
        error = obj.get("error") or None
        if response is not None and response.get("status_code") == 200:
            try:
                completion = ChatCompletion.model_validate(response.get("body") or {})
            except ValueError:
                return Verdict("error", raw="a batch answer that is not a chat completion"), False
            return self.judge.read_answer(completion, max_tokens, spent)
        if response is not None:
            body = response.get("body") or {}
            message = str((body.get("error") or {}).get("message") or "")[:150]
            return Verdict(
                "error", raw=f"HTTP {response.get('status_code')} in batch: {message}"
            ), False
        if error is not None and error.get("code") not in ASK_AGAIN:
            return Verdict(
                "error", raw=f"{error.get('code')}: {str(error.get('message'))[:150]}"
            ), False
        return None

    def _lines(self, file_id: str | None) -> Iterator[dict[str, Any]]:
        """The JSON objects of a batch's output or error file, one at a time (a 50,000-line
        file is read as text once, never held as 50,000 dicts)."""
        import openai

        if not file_id:
            return
        try:
            text = self.judge.client.files.content(file_id).text
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise self.judge._auth_error() from None
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise self._cannot(f"download the batch's file {file_id}", exc) from None
        for line in text.splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                yield obj

    # -- helpers ------------------------------------------------------------------------

    def _all_rows(self) -> list[rows_store.Unjudged]:
        return rows_store.unjudged(self.store, self.run_id, self.judge.spec, everything=True)

    def _sleep(self, seconds: float) -> None:
        """Wait, or stop at once on cancel: the batch goes on at the server and the same
        command resumes it."""
        if self.cancel.wait(seconds):
            self._log(
                "stopped waiting; the batch goes on at the server: run the same command to "
                "collect it (nothing is asked or paid twice)",
                level="warning",
            )
            raise Cancelled

    def _progress(self, newly_done: int, *, in_flight: int = 0) -> None:
        self._done += newly_done
        self.sink.emit(Progress(done=min(self.total, self._done + in_flight), total=self.total))

    def _log(self, message: str, level: str = "info") -> None:
        self.sink.emit(Log(level=level, message=message))

    def _no_batch_api(self) -> UserError:
        return UserError(
            f"{self.judge.where} has no Batch API (/v1/files, /v1/batches)",
            where="--judge-batch",
            fix="judge without --judge-batch (call by call)",
        )

    def _cannot(self, what: str, exc: Exception | None) -> UserError:
        detail = (
            f" (HTTP {exc.status_code})" if exc is not None and hasattr(exc, "status_code") else ""
        )
        return UserError(
            f"could not {what} at {self.judge.where}{detail}",
            where="--judge-batch",
            fix="check the connection and the server, then run the same command again: what "
            "was uploaded or created is reused",
        )
