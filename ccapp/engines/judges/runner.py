"""Judging stored continuations: the verdict cache, usage accounting, and overlap with generation.

One code path serves `ccapp eval --judge J` (a background thread judges what generation has
committed, so a slow API judge never holds generation up) and `ccapp judge RUN --judge J`
(re-judging a run without generating). Verdicts are committed per chunk, so an interrupted
judging job resumes where it stopped, and the cache — keyed by (judge, question version,
request, prefill, continuation) — means the same text is never paid for twice.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ccapp.engines.events import (
    EVENTS_VERSION,
    Log,
    NullSink,
    Progress,
    RunStarted,
    Sink,
    VerdictEvent,
    VerdictInfo,
)
from ccapp.engines.generation.types import Cancelled
from ccapp.engines.judges.base import Judge, JudgeInput, Verdict, cache_key
from ccapp.store import Store
from ccapp.store import evals as rows_store

CHUNK = 64
ABORT_WAIT_S = 2.0


def chunk_size(judge: Judge) -> int:
    """Texts per commit: for an API judge, two rounds of its parallel requests, so that a
    cancel waits for at most that; for local judges, a batch worth computing at once."""
    concurrency = getattr(judge, "concurrency", None)
    return max(4, 2 * concurrency) if concurrency else CHUNK


class JudgeRunner:
    """Judges `Unjudged` rows with one judge, through the cache, into the store."""

    def __init__(self, judge: Judge, run_id: int, sink: Sink | None = None):
        self.judge = judge
        self.run_id = run_id
        self.sink = sink or NullSink()
        self._noted = 0  # the judge's adjustments already reported

    def judge_rows(
        self, store: Store, rows: Sequence[rows_store.Unjudged], *, use_cache: bool = True
    ) -> list[rows_store.NewVerdict]:
        inputs = [JudgeInput(r.request, r.prefill, r.text) for r in rows]
        before = _usage_snapshot(self.judge)
        answers, calls, remember = ask_with_cache(store, self.judge, inputs, use_cache=use_cache)
        verdicts = [self._with_span(row, v) for row, v in zip(rows, answers)]
        # one transaction: a kill can never keep verdicts without the calls that paid for them
        with store.write():
            remember()
            rows_store.save_verdicts(
                store, [(r.continuation_id, v) for r, v in zip(rows, verdicts)]
            )
            self._record_usage(store, before, calls=calls, cached=len(rows) - calls)
            self._note_adjustments(store)
        for row, v in zip(rows, verdicts):
            self.sink.emit(
                VerdictEvent(
                    cell_id=row.cell_id,
                    path=row.path,
                    verdict=VerdictInfo(
                        judge=v.judge,
                        label=v.label,
                        span=v.span,
                        relapse=v.relapse,
                    ),
                )
            )
        return verdicts

    def _note_adjustments(self, store: Store) -> None:
        """What an API judge changed because its server refused it (the token parameter's
        name, temperature 0) goes into the run's config and out as a warning, once: a
        dropped temperature means its verdicts are no longer deterministic."""
        adjustments = getattr(self.judge, "adjustments", [])
        if len(adjustments) <= self._noted:
            return
        from ccapp.store import runs

        settings = dict(runs.get_run(store, self.run_id).config.get("judge_settings") or {})
        settings[self.judge.spec] = self.judge.settings.as_dict() | {  # type: ignore[attr-defined]
            "adjustments": list(adjustments)
        }
        runs.update_config(store, self.run_id, {"judge_settings": settings})
        for message in adjustments[self._noted :]:
            self.sink.emit(Log(level="warning", message=f"judge: {message}"))
        self._noted = len(adjustments)

    def _with_span(self, row: rows_store.Unjudged, v: Verdict) -> rows_store.NewVerdict:
        """LLM judges say whether, not where: a corrected path borrows where the heuristic
        located a correction (span, tokens before it, relapse), when it found one."""
        if v.span is not None and v.span == row.heuristic_span:  # the heuristic itself
            return rows_store.NewVerdict(
                self.judge.spec, v.label, v.score, v.raw, v.span, row.heuristic_tokens, v.relapse
            )
        if v.span is not None or v.label != "yes" or row.heuristic_span is None:
            return rows_store.NewVerdict(
                self.judge.spec, v.label, v.score, v.raw, v.span, None, v.relapse
            )
        return rows_store.NewVerdict(
            self.judge.spec,
            v.label,
            v.score,
            v.raw,
            row.heuristic_span,
            row.heuristic_tokens,
            row.heuristic_relapse,
        )

    def _record_usage(
        self, store: Store, before: tuple[int, int, int], *, calls: int, cached: int
    ) -> None:
        if not self.judge.cacheable:  # the heuristic: nothing spent, nothing to account
            return
        after = _usage_snapshot(self.judge)
        usage = getattr(self.judge, "usage", None)
        cost = None
        if usage is not None:
            from ccapp.engines.judges.openai_judge import Usage

            delta = Usage(after[0] - before[0], after[1] - before[1], after[2] - before[2])
            cost = delta.cost_usd(getattr(self.judge, "model", ""))
        rows_store.add_usage(
            store,
            self.run_id,
            self.judge.spec,
            calls=calls,
            cached=cached,
            prompt_tokens=after[1] - before[1],
            completion_tokens=after[2] - before[2],
            cost_usd=cost,
        )


def judge_with_cache(
    store: Store, judge: Judge, inputs: Sequence[JudgeInput], *, use_cache: bool = True
) -> tuple[list[Verdict], int]:
    """Verdicts for `inputs`, asking the judge only about texts it has not judged before.

    Returns the verdicts and the number of texts the judge was asked about. Only yes/no
    answers are cached: errors and unparsed answers are asked again by a later attempt.
    """
    verdicts, calls, remember = ask_with_cache(store, judge, inputs, use_cache=use_cache)
    remember()
    return verdicts, calls


def ask_with_cache(
    store: Store, judge: Judge, inputs: Sequence[JudgeInput], *, use_cache: bool = True
) -> tuple[list[Verdict], int, Callable[[], None]]:
    """`judge_with_cache` with the cache write left to the caller (the returned callable), so
    that it can share one transaction with the verdicts and the usage it paid for."""
    namespace = getattr(judge, "cache_id", judge.spec)
    keys = [cache_key(namespace, item) for item in inputs]
    cached = rows_store.cached_verdicts(store, keys) if use_cache and judge.cacheable else {}
    misses = [i for i, key in enumerate(keys) if key not in cached]
    fresh = dict(zip(misses, judge.judge([inputs[i] for i in misses])))

    def remember() -> None:
        if judge.cacheable:
            rows_store.remember_verdicts(
                store,
                judge.spec,
                [(keys[i], fresh[i].label, fresh[i].score, fresh[i].raw) for i in misses],
            )

    verdicts = [fresh[i] if i in fresh else Verdict(*cached[keys[i]]) for i in range(len(inputs))]
    return verdicts, len(misses), remember


def _usage_snapshot(judge: Judge) -> tuple[int, int, int]:
    usage = getattr(judge, "usage", None)
    if usage is None:
        return (0, 0, 0)
    return (usage.calls, usage.prompt_tokens, usage.completion_tokens)


class BackgroundJudging:
    """A thread that judges what the generation loop hands it, with its own store connection."""

    def __init__(self, store_path: Path, runner: JudgeRunner):
        self._queue: queue.Queue[list[rows_store.Unjudged] | None] = queue.Queue()
        self._store_path = store_path
        self._runner = runner
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="ccapp-judge", daemon=True)
        self._thread.start()

    def submit(self, rows: list[rows_store.Unjudged]) -> None:
        self.raise_if_failed()
        size = chunk_size(self._runner.judge)
        for start in range(0, len(rows), size):
            self._queue.put(rows[start : start + size])

    def pending(self) -> int:
        """Texts not yet taken by the thread (an estimate, for the user)."""
        return self._queue.qsize() * chunk_size(self._runner.judge)

    def finish(self, cancel: threading.Event | None = None) -> None:
        """Wait until everything submitted is judged; re-raise a failure of the thread.

        A cancel while waiting stops after the chunk in hand (the rest stays unjudged and
        is judged on resume) and raises Cancelled.
        """
        self._queue.put(None)
        while self._thread.is_alive():
            self._thread.join(timeout=0.2)
            if cancel is not None and cancel.is_set():
                self.abort()
                raise Cancelled
        self.raise_if_failed()

    def abort(self) -> None:
        """Stop after the chunk in hand; what is not judged stays unjudged (and resumable).

        Waits a moment for that chunk; a judge slower than that is left to the daemon thread
        (its chunk commits whole, or not at all, whenever the process ends).
        """
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=ABORT_WAIT_S)

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        try:
            with Store.open(self._store_path) as store:
                while True:
                    rows = self._queue.get()
                    if rows is None or self._stop.is_set():
                        return
                    self._runner.judge_rows(store, rows)
        except BaseException as exc:  # handed to the generation thread at its next submit/finish
            self._error = exc


def judge_stored(
    store: Store,
    run_id: int,
    judge: Judge,
    *,
    sink: Sink | None = None,
    cancel: threading.Event | None = None,
    redo_unparsed: bool = False,
    everything: bool = False,
) -> dict[str, Any]:
    """`ccapp judge RUN`: judge what `judge` has not judged in a run; returns counts."""
    sink = sink or NullSink()
    redo = ("error", "unparsed") if redo_unparsed else ("error",)
    rows = rows_store.unjudged(store, run_id, judge.spec, redo=redo, everything=everything)
    total = rows_store.count_continuations(store, run_id)
    sink.emit(
        RunStarted(
            v=EVENTS_VERSION,
            kind="judge",
            config={"judge": judge.spec},
            totals={"continuations": total, "todo": len(rows)},
        )
    )
    runner = JudgeRunner(judge, run_id, sink)
    started, done = time.monotonic(), 0
    size = chunk_size(judge)
    for start in range(0, len(rows), size):
        if cancel is not None and cancel.is_set():
            raise Cancelled
        chunk = rows[start : start + size]
        runner.judge_rows(store, chunk, use_cache=not everything)
        done += len(chunk)
        rate = done / max(time.monotonic() - started, 1e-9)
        sink.emit(
            Progress(
                done=total - len(rows) + done,
                total=total,
                rate=round(rate, 2),
                eta_s=round((len(rows) - done) / rate, 1) if rate > 0 else None,
            )
        )
    return {"judged": len(rows), "total": total}
