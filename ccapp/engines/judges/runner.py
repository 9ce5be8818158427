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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ccapp.engines.judges.openai_judge import OpenAIJudge

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
        inputs = [judge_input(r) for r in rows]
        before = _usage_snapshot(self.judge)
        answers, calls, remember = ask_with_cache(store, self.judge, inputs, use_cache=use_cache)
        return self.store_answers(
            store,
            rows,
            answers,
            remember=remember,
            calls=calls,
            spent=_spent_since(self.judge, before),
        )

    def store_answers(
        self,
        store: Store,
        rows: Sequence[rows_store.Unjudged],
        answers: Sequence[Verdict],
        *,
        remember: Callable[[], None],
        calls: int,
        spent: Any,
        batch: bool = False,
        then: Callable[[], object] | None = None,
    ) -> list[rows_store.NewVerdict]:
        """Store the judge's answers on `rows` in one transaction with the cache entries
        (`remember`), the usage that paid for them (`spent`, a Usage or None; priced at the
        Batch API's rate when `batch`) and `then` (a batch marked stored): a kill can never
        keep verdicts without the calls that paid for them, or the other way round."""
        verdicts = [self._with_span(row, v) for row, v in zip(rows, answers)]
        with store.write():
            remember()
            rows_store.save_verdicts(
                store, [(r.continuation_id, v) for r, v in zip(rows, verdicts)]
            )
            self._record_usage(store, spent, calls=calls, cached=len(rows) - calls, batch=batch)
            self._note_adjustments(store)
            if then is not None:
                then()
        for row, v in zip(rows, verdicts):
            self.sink.emit(
                VerdictEvent(
                    cell_id=row.cell_id,
                    path=row.path,
                    verdict=VerdictInfo.like(v),
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
        self, store: Store, spent: Any, *, calls: int, cached: int, batch: bool
    ) -> None:
        if not self.judge.cacheable:  # the heuristic: nothing spent, nothing to account
            return
        prompt = spent.prompt_tokens if spent is not None else 0
        completion = spent.completion_tokens if spent is not None else 0
        cost = None
        if spent is not None:
            cost = spent.cost_usd(getattr(self.judge, "model", ""), batch=batch)
        rows_store.add_usage(
            store,
            self.run_id,
            self.judge.spec,
            calls=calls,
            cached=cached,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost,
        )


def judge_input(row: rows_store.Unjudged) -> JudgeInput:
    """What the judge is shown of a stored continuation."""
    return JudgeInput(row.request, row.prefill, row.text)


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
    keys, cached = look_up(store, judge, inputs, use_cache=use_cache)
    misses = [i for i, key in enumerate(keys) if key not in cached]
    fresh = dict(zip(misses, judge.judge([inputs[i] for i in misses])))
    verdicts = [fresh[i] if i in fresh else Verdict(*cached[keys[i]]) for i in range(len(inputs))]
    return verdicts, len(misses), remembering(store, judge, [(keys[i], fresh[i]) for i in misses])


def look_up(
    store: Store, judge: Judge, inputs: Sequence[JudgeInput], *, use_cache: bool = True
) -> tuple[list[str], dict[str, tuple[str, float | None, str | None]]]:
    """Each input's cache key, and the cached verdicts (label, score, raw) of those that have
    one (none when `use_cache` is off or the judge is not deterministic)."""
    namespace = getattr(judge, "cache_id", judge.spec)
    keys = [cache_key(namespace, item) for item in inputs]
    cached = rows_store.cached_verdicts(store, keys) if use_cache and judge.cacheable else {}
    return keys, cached


def remembering(
    store: Store, judge: Judge, entries: Sequence[tuple[str, Verdict]]
) -> Callable[[], None]:
    """The cache write for fresh verdicts (key, verdict), to run inside the caller's
    transaction; only yes/no verdicts of a deterministic judge are kept."""

    def remember() -> None:
        if judge.cacheable:
            rows_store.remember_verdicts(
                store, judge.spec, [(key, v.label, v.score, v.raw) for key, v in entries]
            )

    return remember


def cost_estimate(
    store: Store,
    judge: Judge,
    inputs: Sequence[JudgeInput],
    *,
    use_cache: bool = True,
    batch: bool = False,
) -> Any:
    """What asking an API judge about `inputs` (those not in the cache) is estimated to
    cost, as a pricing.Estimate; None for a judge that charges nothing."""
    keys, cached = look_up(store, judge, inputs, use_cache=use_cache)
    return _estimate(
        judge, ((item, 1) for item, key in zip(inputs, keys) if key not in cached), batch
    )


def planned_cost(
    judge: Judge, cells: Sequence[tuple[str, str, int]], *, max_new_tokens: int
) -> Any:
    """For `ccapp eval`, before generating: what judging the continuations still to come
    will cost, given as (request, prefill, how many) per cell, each continuation taken at
    its whole budget of `max_new_tokens` tokens (so the input side is an upper bound too)."""
    budget = "x" * (4 * max_new_tokens)  # chars/4: as many tokens as the budget allows
    todo = ((JudgeInput(request, prefill, budget), n) for request, prefill, n in cells if n)
    return _estimate(judge, todo, getattr(judge, "batch", None) is not None)


def _estimate(judge: Judge, todo: Iterable[tuple[JudgeInput, int]], batch: bool) -> Any:
    from ccapp.engines.judges.openai_judge import SYSTEM, OpenAIJudge
    from ccapp.engines.judges.pricing import estimate

    if not isinstance(judge, OpenAIJudge):
        return None
    prompts = ((SYSTEM + item.question(), times) for item, times in todo)
    return estimate(
        judge.spec, judge.model, prompts, max_tokens=judge.settings.max_tokens, batch=batch
    )


def announce_cost(sink: Sink, estimate: Any) -> None:
    """The estimate as a log line, before the judge is asked anything."""
    if estimate is not None:
        sink.emit(Log(level="info", message=estimate.line()))


def _usage_snapshot(judge: Judge) -> tuple[int, int, int]:
    usage = getattr(judge, "usage", None)
    if usage is None:
        return (0, 0, 0)
    return (usage.calls, usage.prompt_tokens, usage.completion_tokens)


def _spent_since(judge: Judge, before: tuple[int, int, int]) -> Any:
    """The Usage an API judge has added since `before` (None for judges without one)."""
    if getattr(judge, "usage", None) is None:
        return None
    from ccapp.engines.judges.openai_judge import Usage

    after = _usage_snapshot(judge)
    return Usage(after[0] - before[0], after[1] - before[1], after[2] - before[2])


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
    announce_start: bool = True,
) -> dict[str, Any]:
    """`ccapp judge RUN`: judge what `judge` has not judged in a run; returns counts.

    An OpenAI judge made with batch settings goes through the Batch API; so does any OpenAI
    judge that left an unfinished batch on this run (that batch is finished first, never
    paid for again by asking call by call). `announce_start=False` leaves out the judge
    job's run_started event, for judging inside a run that has announced itself (eval)."""
    sink = sink or NullSink()
    redo = ("error", "unparsed") if redo_unparsed else ("error",)
    batched = _batched(store, run_id, judge)
    if batched is not None:
        from ccapp.engines.judges.openai_batch import BatchJudging

        return BatchJudging(store, run_id, batched, sink, cancel).run(
            redo=redo, everything=everything, announce_start=announce_start
        )
    rows = rows_store.unjudged(store, run_id, judge.spec, redo=redo, everything=everything)
    total = rows_store.count_continuations(store, run_id)
    if announce_start:
        sink.emit(
            RunStarted(
                v=EVENTS_VERSION,
                kind="judge",
                config={"judge": judge.spec},
                totals={"continuations": total, "todo": len(rows)},
            )
        )
    estimate = cost_estimate(store, judge, [judge_input(r) for r in rows], use_cache=not everything)
    announce_cost(sink, estimate)
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
    counts: dict[str, Any] = {"judged": len(rows), "total": total}
    if estimate is not None:
        counts["cost_estimate"] = estimate.as_dict()
    return counts


def _batched(store: Store, run_id: int, judge: Judge) -> OpenAIJudge | None:
    """The OpenAI judge itself if it judges through the Batch API here (made with batch
    settings, or with an unfinished batch of its own on this run), else None."""
    from ccapp.engines.judges.openai_judge import OpenAIJudge
    from ccapp.store import batches

    if not isinstance(judge, OpenAIJudge):
        return None
    if judge.batch is not None or batches.open_batches(store, run_id, judge.spec):
        return judge
    return None
