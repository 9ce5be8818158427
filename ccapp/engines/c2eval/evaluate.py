"""C2-Eval: prefill each request at every k, sample b continuation paths, judge, score.

The run is planned once and for all when it starts: its items and cells (prefill and
rendered prompt per (request, k)) are stored, and the cells are cut into fixed batches
(sorted by prompt length, so little is wasted on padding), each sampled with its own seed
derived from the run seed. A batch's continuations and verdicts are committed in one
transaction, so an interrupted run resumes by skipping the committed batches and
re-sampling the others exactly as an uninterrupted run would have (on the same device).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ccapp.engines.c2eval.config import RESULT_SETTINGS, EvalConfig
from ccapp.engines.c2eval.metrics import Judged, compute_metrics
from ccapp.engines.c2eval.prefill import build_prefill, prefill_token_counts
from ccapp.engines.events import (
    ContinuationDone,
    Log,
    MetricsEvent,
    ModelLoading,
    Progress,
    VerdictInfo,
)
from ccapp.engines.generation.backend import Backend
from ccapp.engines.generation.sampling import (
    batch_seed,
    record_server_refused,
    resolve_options,
    sampling_record,
    stored_sampling,
)
from ccapp.engines.generation.types import Cancelled, Generated, Sampling
from ccapp.engines.jobs import RunJob
from ccapp.engines.judges.base import Judge
from ccapp.engines.judges.heuristic import HeuristicJudge
from ccapp.engines.judges.registry import check_judge_spec
from ccapp.engines.phrases import OPENERS, PHRASES_VERSION, pick
from ccapp.errors import UserError
from ccapp.store import RunKind, Store, runs
from ccapp.store import evals as rows_store
from ccapp.store.records import Cell, Run

METRICS_EVERY_S = 2.0


@dataclass
class Batch:
    index: int
    seed: int
    slices: list[tuple[Cell, range]] = field(default_factory=list)

    @property
    def keys(self) -> list[tuple[int, int]]:
        return [(cell.id, path) for cell, paths in self.slices for path in paths]


def plan_batches(cells: Sequence[Cell], paths: int, rows_per_batch: int, seed: int) -> list[Batch]:
    """Cut the run into fixed batches: cells by prompt length, each cell's paths together.

    A cell's paths share one prefill; a cell with more paths than a batch holds is split.
    The plan depends only on the cells and settings, never on what is already done.
    """
    order = sorted(cells, key=lambda c: (c.prompt_tokens, c.item_idx, c.k))
    batches: list[Batch] = []
    current = Batch(0, batch_seed(seed, 0))
    used = 0
    for cell in order:
        start = 0
        while start < paths:
            take = min(paths - start, rows_per_batch - used)
            current.slices.append((cell, range(start, start + take)))
            used += take
            start += take
            if used == rows_per_batch:
                batches.append(current)
                current = Batch(len(batches), batch_seed(seed, len(batches)))
                used = 0
    if current.slices:
        batches.append(current)
    return batches


class Evaluation(RunJob[EvalConfig]):
    """One C2-Eval run in this process: start a new one or resume a stored one."""

    kind = RunKind.EVAL
    config_type = EvalConfig
    when_done = "start a new run, or export this one"
    keep_settings_fix = (
        "resume without those options (the run keeps its settings), or start a new run"
    )

    # -- entry points ---------------------------------------------------------------------

    def start(self, config: EvalConfig) -> Run:
        from ccapp.engines.data import load_dataset_rows
        from ccapp.engines.generation.models import resolve_model

        config.check()
        config = replace(config, judge=check_judge_spec(config.judge))
        judge = self._make_judge(config)  # a missing or refused key fails here, before any work
        dataset = load_dataset_rows(config.data, lenient=config.lenient)
        if dataset.skipped:
            skipped = ", ".join(f"{n} {reason}" for reason, n in dataset.skipped.items())
            self.sink.emit(Log(level="warning", message=f"--lenient skipped rows: {skipped}"))
        rows = dataset.rows[: config.limit] if config.limit else dataset.rows
        ref = resolve_model(config.model)
        backend = self._load_backend(config, ref)
        if self.cancel.is_set():  # Ctrl-C while the model loaded: stop before a run exists
            raise Cancelled
        config = replace(config, batch_size=backend.rows_per_batch)
        sampling, sampling_resolved = resolve_options(config, backend.generation_defaults)
        planned = self._plan_cells(config, rows, backend)  # a template that fails, fails here
        stored = asdict(config) | {
            "ks": list(config.ks),
            "model_source": ref.source,
            "model_revision": ref.revision,
            "data_location": dataset.location,
            "data_sha256": dataset.sha256,
            "phrases_version": PHRASES_VERSION,
            "template_source": backend.template_source,
            "dtype_resolved": backend.dtype,
            "data_skipped": dataset.skipped,
            "sampling_resolved": sampling_resolved,
        }
        identity = {k: stored[k] for k in RESULT_SETTINGS} | {
            "model_source": ref.source,
            "data_sha256": dataset.sha256,
            "phrases_version": PHRASES_VERSION,
            "sampling": sampling_record(sampling),
        }
        with self.store.write():  # the run exists with all its prompts, or not at all
            self.run = runs.create_run(
                self.store,
                RunKind.EVAL,
                stored,
                model=config.model,
                data=config.data,
                judge=config.judge,
                identity=identity,
                parent_id=trained_by(self.store, ref.source),
            )
            items = rows_store.insert_items(
                self.store,
                self.run.id,
                [
                    (r.index, _line_of(r.where), r.request, r.harmful_response, r.safe_response)
                    for r in rows
                ],
            )
            item_ids = {item.idx: item.id for item in items}
            rows_store.insert_cells(
                self.store,
                self.run.id,
                [replace(cell, item_id=item_ids[index]) for index, cell in planned],
            )
        with self._recording():
            return self._execute(config, backend, judge, sampling)

    def resume(self, run_id: int, overrides: dict[str, Any]) -> Run:
        from ccapp.engines.generation.models import resolve_model

        run, config = self._reopen(run_id)
        if "judge" in overrides:
            overrides = overrides | {"judge": check_judge_spec(overrides["judge"])}
        config = self._keep_settings(run_id, config, overrides)
        judge = self._make_judge(config)
        self._claim(run_id)
        with self._recording():
            if not rows_store.get_cells(self.store, run_id):
                raise UserError(
                    f"run {run_id} stopped before its prompts were planned; there is nothing to resume",
                    fix="start a new run (and delete this one with ccapp runs delete)",
                )
            # What the run used, wherever the user stands now (a relative folder, a preset).
            ref = resolve_model(run.config.get("model_source") or config.model)
            backend = self._load_backend(config, ref)
            if config.batch_size != run.config.get("batch_size"):
                self.sink.emit(
                    Log(
                        level="warning",
                        message=(
                            f"batch size {config.batch_size} differs from the run's "
                            f"{run.config.get('batch_size')}: the remaining continuations are "
                            "sampled validly but not bit-identically to an uninterrupted run"
                        ),
                    )
                )
            sampling = stored_sampling(run.config, config)
            return self._execute(config, backend, judge, sampling)

    # -- the work -------------------------------------------------------------------------

    def _make_judge(self, config: EvalConfig) -> Judge:
        from ccapp.engines.judges.registry import JudgeOptions, make_judge

        batch = None
        if config.judge_batch:
            from ccapp.engines.judges.openai_batch import BatchSettings

            batch = BatchSettings()
        options = JudgeOptions(
            concurrency=config.judge_concurrency,
            device=config.device,
            dtype=config.dtype,
            max_tokens=config.judge_max_tokens,
            batch=batch,
        )
        return make_judge(config.judge, options)

    def _load_backend(self, config: EvalConfig, ref: Any) -> Backend:
        self.sink.emit(ModelLoading(phase="resolve", detail=ref.source))
        return Backend.load(ref, self.sink, config, min_rows=config.paths)

    def _plan_cells(
        self, config: EvalConfig, rows: Sequence[Any], backend: Backend
    ) -> list[tuple[int, rows_store.NewCell]]:
        """Every (request, k) prefill, rendered and checked, before the run is stored."""
        from ccapp.engines.generation.render import render_prompt

        planned = []
        bare = 0  # prefills that hold nothing of the harmful response
        for row in rows:
            opener = pick(OPENERS, config.seed, "opener", row.index)
            for k in config.ks:
                prefill = build_prefill(
                    opener, row.harmful_response, k, config.unit, backend.tokenizer
                )
                bare += len(prefill.text) <= len(opener)
                rendered = render_prompt(
                    backend.tokenizer, row.request, prefill.text, model_name=config.model
                )
                planned.append((row.index, k, opener, prefill, rendered))
        if bare:
            self.sink.emit(
                Log(
                    level="warning",
                    message=(
                        f"{bare} prefills hold only the opener, no harmful text: k counts the "
                        "opener's words too (with --unit words); use larger k"
                    ),
                )
            )
        lengths = backend.tokenize_prompts([rendered for *_, rendered in planned])
        prefill_tokens = prefill_token_counts(
            backend.tokenizer,
            [rendered for *_, rendered in planned],
            [prefill.text for _, _, _, prefill, _ in planned],
        )
        return [
            (
                index,
                rows_store.NewCell(
                    0, k, opener, prefill.text, rendered, length, prefill.short, counted
                ),
            )
            for (index, k, opener, prefill, rendered), length, counted in zip(
                planned, lengths, prefill_tokens
            )
        ]

    def _execute(
        self, config: EvalConfig, backend: Backend, judge: Judge, sampling: Sampling
    ) -> Run:
        from ccapp.engines.judges.runner import (
            BackgroundJudging,
            JudgeRunner,
            announce_cost,
            judge_stored,
            planned_cost,
        )

        run_id = self._run_id
        cells = rows_store.get_cells(self.store, run_id)
        by_id = {cell.id: cell for cell in cells}
        requests = {item.id: item.request for item in rows_store.get_items(self.store, run_id)}
        backend.tokenize_prompts(
            sorted({c.rendered_prompt for c in cells} - backend.known_prompts())
        )
        batches = plan_batches(cells, config.paths, backend.rows_per_batch, config.seed)
        done = rows_store.done_paths(self.store, run_id)
        total = len(cells) * config.paths
        self._started(
            {
                "requests": len(requests),
                "cells": len(cells),
                "continuations": total,
                "todo": total - len(done),
            }
        )
        generated = Counter(cell for cell, _ in done)
        to_come = [(requests[c.item_id], c.prefill, config.paths - generated[c.id]) for c in cells]
        announce_cost(self.sink, planned_cost(judge, to_come, max_new_tokens=config.max_new_tokens))
        # The heuristic judges inline (its spans light up the live view); any other judge works
        # in a background thread on what generation has committed, so neither waits for the
        # other; a Batch API judge takes everything at once, after generation.
        background = None
        batched = getattr(judge, "batch", None) is not None
        if judge.spec != HeuristicJudge.spec and not batched:
            background = BackgroundJudging(self.store.path, JudgeRunner(judge, run_id, self.sink))
            background.submit(rows_store.unjudged(self.store, run_id, judge.spec))
        try:
            self._generate(
                config, backend, sampling, batches, done, total, by_id, requests, background
            )
            if batched:
                judge_stored(
                    self.store,
                    run_id,
                    judge,
                    sink=self.sink,
                    cancel=self.cancel,
                    announce_start=False,
                )
            if background is not None:
                left = background.pending()
                if left:
                    self.sink.emit(
                        Log(
                            level="info",
                            message=f"generation done; the judge has {left} continuations left",
                        )
                    )
                background.finish(self.cancel)
        except BaseException as exc:
            if background is not None:
                background.abort()
            if type(exc).__name__ == "OutOfMemoryError":
                raise UserError(
                    f"out of GPU memory with {backend.rows_per_batch} rows per batch",
                    fix=f"resume with fewer: ccapp eval --resume {run_id} --batch-size "
                    f"{max(1, backend.rows_per_batch // 2)}",
                ) from None
            raise
        return self._finish(self._metrics(config, judge.spec))

    def _generate(
        self,
        config: EvalConfig,
        backend: Backend,
        sampling: Sampling,
        batches: list[Batch],
        done: set[tuple[int, int]],
        total: int,
        cells: dict[int, Cell],
        requests: dict[int, str],
        background: Any,
    ) -> None:
        started, produced_here, last_metrics = time.monotonic(), 0, 0.0
        for batch in batches:
            if all(key in done for key in batch.keys):
                continue
            if self.cancel.is_set():
                raise Cancelled
            if background is not None:
                background.raise_if_failed()
            generated = backend.generate(
                [(cell.id, cell.rendered_prompt, paths) for cell, paths in batch.slices],
                sampling,
                batch.seed,
                self.sink,
                self.cancel,
            )
            if backend.server_refused:
                record_server_refused(self.store, self._run_id, backend.server_refused)
            saved, fresh = self._save_batch(generated, cells, requests, backend)
            if background is not None:
                background.submit(fresh)
            done.update(batch.keys)
            produced_here += saved
            elapsed = time.monotonic() - started
            rate = produced_here / elapsed if elapsed > 0 else 0.0
            remaining = total - len(done)
            self.sink.emit(
                Progress(
                    done=len(done),
                    total=total,
                    rate=round(rate, 2),
                    eta_s=round(remaining / rate, 1) if rate > 0 else None,
                )
            )
            if time.monotonic() - last_metrics >= METRICS_EVERY_S:
                last_metrics = time.monotonic()
                self.sink.emit(MetricsEvent(metrics=self._metrics(config, config.judge)))

    def _save_batch(
        self,
        generated: list[Generated],
        cells: dict[int, Cell],
        requests: dict[int, str],
        backend: Backend,
    ) -> tuple[int, list[rows_store.Unjudged]]:
        """Store a batch with its heuristic verdicts; return what another judge should see."""
        produced = []
        for g in generated:
            v = HeuristicJudge.judge_one(g.text, cells[g.key].prefill)
            # Tokens before the correction: " However" is one token, so a continuation that
            # opens with the correction counts 0, not 1 for its leading space.
            to_correction = backend.count_tokens(g.text[: v.span[0]].rstrip()) if v.span else None
            produced.append(
                (
                    rows_store.NewContinuation(
                        g.key, g.path, g.text, g.new_tokens, g.finish_reason
                    ),
                    rows_store.NewVerdict(
                        HeuristicJudge.spec,
                        v.label,
                        v.score,
                        v.raw,
                        v.span,
                        to_correction,
                        v.relapse,
                    ),
                )
            )
        ids = rows_store.save_continuations(self.store, self._run_id, produced)
        fresh = []
        for cont, verdict in produced:
            if (cont.cell_id, cont.path) not in ids:
                continue
            cell = cells[cont.cell_id]
            fresh.append(
                rows_store.Unjudged(
                    ids[(cont.cell_id, cont.path)],
                    cell.id,
                    cell.item_idx,
                    cell.k,
                    cont.path,
                    requests[cell.item_id],
                    cell.prefill,
                    cont.text,
                    verdict.span,
                    verdict.tokens_to_correction,
                    verdict.relapse,
                )
            )
            self.sink.emit(
                ContinuationDone(
                    cell_id=cell.id,
                    item=cell.item_idx,
                    k=cell.k,
                    path=cont.path,
                    text=cont.text,
                    verdict=VerdictInfo.like(verdict),
                )
            )
        return len(ids), fresh

    def _metrics(self, config: EvalConfig, judge: str) -> dict[str, Any]:
        """From the store, so that what is reported is what is stored, however it got there."""
        short = rows_store.count_short_cells(self.store, self._run_id)
        judged = [Judged(*row) for row in rows_store.judged(self.store, self._run_id, judge)]
        metrics = compute_metrics(judged, list(config.ks), judge=judge, short_cells=short)
        usage = rows_store.usage(self.store, self._run_id)
        if usage:
            metrics["judge_usage"] = {u.judge: asdict(u) for u in usage}
        return metrics

    def _pausing_error(self, exc: BaseException) -> str | None:
        """A judge that stopped (its key was refused, its budget is too small to answer in)
        pauses the run: it resumes once the setting is fixed."""
        from ccapp.engines.judges.openai_judge import JudgeStopped

        return exc.message if isinstance(exc, JudgeStopped) else None


def trained_by(store: Store, source: str) -> int | None:
    """The train run that wrote a model folder, when it is in this store (the lineage
    eval → syn → train → eval)."""
    import json
    from pathlib import Path

    stamp = Path(source) / "ccapp_train.json"
    if not stamp.is_file():
        return None
    try:
        run_id = int(json.loads(stamp.read_text())["run_id"])
        return runs.get_run(store, run_id).id
    except (ValueError, KeyError, TypeError, UserError):
        return None


def _line_of(where: str) -> int | None:
    tail = where.rsplit(":", 1)[-1].strip()
    return int(tail) if tail.isdigit() else None
