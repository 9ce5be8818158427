"""Progress events: what a job tells the app, scripts and the terminal, one JSON object a line.

Schema (EVENTS_VERSION 1). Every line has `"event"` (its type) and `"run_id"`:

- run_started: `v`, `kind`, `config`, `totals` (requests, cells, continuations, todo)
- model_loading: `phase` (resolve | download | tokenizer | weights | ready), `detail`,
  `done`/`total` (bytes, while downloading)
- tokens: `deltas`: [[cell_id, path, text], …] — text appended to a streaming continuation,
  coalesced every ~80 ms
- continuation_done: `cell_id`, `item`, `k`, `path`, `text`, `verdict` {judge, label, span,
  relapse}: the heuristic's verdict, known at once (its span is what the live view lights)
- verdict: `cell_id`, `path`, `verdict` {judge, label, span, relapse}: another judge's
  verdict, arriving after the continuation (LLM judges work in the background)
- progress: `done`, `total`, `rate` (continuations/s), `eta_s`
- metrics: the run's current metrics (Corr@k table, see ccapp.engines.c2eval.metrics)
- log: `level`, `message`
- error: `message` (what went wrong and the fix)
- run_finished: `status`, `metrics`
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

EVENTS_VERSION = 1
TOKEN_FLUSH_S = 0.08


class Sink(Protocol):
    wants_tokens: bool  # False spares the engine decoding every row at every step

    def emit(self, event: str, **fields: Any) -> None: ...

    def tokens(self, deltas: list[tuple[int, int, str]]) -> None: ...

    def close(self) -> None: ...


class NullSink:
    wants_tokens = False

    def emit(self, event: str, **fields: Any) -> None:
        pass

    def tokens(self, deltas: list[tuple[int, int, str]]) -> None:
        pass

    def close(self) -> None:
        pass


class JsonLinesSink:
    """Writes events as JSON lines; token deltas are buffered and flushed on a clock."""

    wants_tokens = True

    def __init__(
        self,
        run_id: Callable[[], int | None],
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._run_id = run_id
        self._out = out or sys.stdout
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[tuple[int, int, str]] = []
        self._last_flush = clock()

    def emit(self, event: str, **fields: Any) -> None:
        with self._lock:
            self._flush_tokens()
            self._write({"event": event, "run_id": self._run_id(), **fields})

    def tokens(self, deltas: list[tuple[int, int, str]]) -> None:
        with self._lock:
            self._pending.extend(deltas)
            if self._clock() - self._last_flush >= TOKEN_FLUSH_S:
                self._flush_tokens()

    def close(self) -> None:
        with self._lock:
            self._flush_tokens()

    def _flush_tokens(self) -> None:
        self._last_flush = self._clock()
        if not self._pending:
            return
        merged: dict[tuple[int, int], str] = {}
        for cell, path, text in self._pending:
            merged[(cell, path)] = merged.get((cell, path), "") + text
        self._pending = []
        deltas = [[cell, path, text] for (cell, path), text in merged.items()]
        self._write({"event": "tokens", "run_id": self._run_id(), "deltas": deltas})

    def _write(self, obj: dict[str, Any]) -> None:
        try:
            self._out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self._out.flush()
        except BrokenPipeError:  # the reader (the app) went away; the job carries on
            pass
