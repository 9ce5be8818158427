"""The JSON report of a run (`ccapp export`): versioned, self-contained, recomputed from the store.

Bump SCHEMA_VERSION whenever a field changes meaning or disappears; adding a field is
backwards-compatible. `schema_version` is always the first key, so a reader can check it
before reading anything else. Metrics are recomputed from the stored verdicts for every
judge that judged the run, so the report never carries a stale number.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ccapp import __version__
from ccapp.engines.c2eval.comparison import versus_baseline
from ccapp.engines.c2eval.metrics import Judged, compute_metrics, paper_list
from ccapp.errors import UserError
from ccapp.store import Run, RunKind, Store, runs
from ccapp.store import evals as rows_store

SCHEMA_VERSION = 1


def run_metrics(store: Store, run: Run, judge: str) -> dict[str, Any]:
    ks = [int(k) for k in run.config.get("ks", [])]
    judged = [Judged(*row) for row in rows_store.judged(store, run.id, judge)]
    return compute_metrics(
        judged, ks, judge=judge, short_cells=rows_store.count_short_cells(store, run.id)
    )


def build_report(
    store: Store, run_id: int, *, now: str | None = None, version: str = __version__
) -> dict[str, Any]:
    run = runs.get_run(store, run_id)
    if run.kind is not RunKind.EVAL:
        return _run_report(run, now, version)
    ks = [int(k) for k in run.config.get("ks", [])]
    judges = rows_store.judges_of(store, run.id)
    metrics = {judge: run_metrics(store, run, judge) for judge in judges}
    cells = rows_store.get_cells(store, run.id)
    items = rows_store.get_items(store, run.id)
    return {
        **_header(run, now, version),
        "model": {
            "spec": run.model,
            "source": run.config.get("model_source"),
            "revision": run.config.get("model_revision"),
            "chat_template": run.config.get("template_source"),
            "dtype": run.config.get("dtype_resolved"),
        },
        # what the paths were sampled with, and where each value came from (engines/generation/sampling.py);
        # null for a run stored before ccapp resolved it (it used temperature and top-p only)
        "sampling": run.config.get("sampling_resolved"),
        "dataset": {
            "spec": run.data,
            "location": run.config.get("data_location"),
            "sha256": run.config.get("data_sha256"),
            "requests": len(items),
        },
        "judges": judges,
        "primary_judge": run.judge,
        "metrics": metrics,
        "judge_usage": {
            u.judge: {
                "calls": u.calls,
                "cached": u.cached,
                "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens,
                "estimated_cost_usd": u.cost_usd,
            }
            for u in rows_store.usage(store, run.id)
        },
        "paper": {judge: paper_list(m, ks) for judge, m in metrics.items()},
        # the paired Δ against the nearest eval ancestor (engines/c2eval/comparison.py), or null
        "baseline": versus_baseline(store, run),
        "per_k": {
            judge: [
                {
                    "k": k,
                    "corr": m["corr"].get(str(k)),
                    "ci95": m["ci95"].get(str(k)),
                    "n": m["n"].get(str(k)),
                    "unparsed": m["unparsed"].get(str(k)),
                    "errors": m["errors"].get(str(k)),
                    "interval_requests": m["ci95_requests"].get(str(k)),
                }
                for k in ks
            ]
            for judge, m in metrics.items()
        },
        "items": [
            {
                "idx": i.idx,
                "source_line": i.source_line,
                "request": i.request,
                "harmful_response": i.harmful_response,
            }
            for i in items
        ],
        "cells": [
            {
                "item": c.item_idx,
                "k": c.k,
                "opener": c.opener,
                "prefill": c.prefill,
                "rendered_prompt": c.rendered_prompt,
                "prompt_tokens": c.prompt_tokens,
                "prefill_tokens": c.prefill_tokens,
                "short": c.short,
            }
            for c in cells
        ],
        "continuations": [
            {
                "item": t.item_idx,
                "k": t.k,
                "path": t.path,
                "text": t.text,
                "new_tokens": t.new_tokens,
                "finish_reason": t.finish_reason,
                "verdicts": {
                    judge: {
                        "label": v.label,
                        "score": v.score,
                        "raw": v.raw,
                        "span": list(v.span) if v.span else None,
                        "tokens_to_correction": v.tokens_to_correction,
                        "relapse": v.relapse,
                    }
                    for judge, v in sorted(t.verdicts.items())
                },
            }
            for t in rows_store.continuations(store, run.id)
        ],
    }


def _header(run: Any, now: str | None, version: str) -> dict[str, Any]:
    """What every report starts with: versions, export time, the run and its settings."""
    return {
        "schema_version": SCHEMA_VERSION,
        "ccapp_version": version,
        "exported_at": now or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run": {
            "id": run.id,
            "kind": run.kind.value,
            "status": run.status.value,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
            "fingerprint": run.fingerprint,
            "parent_id": run.parent_id,
            "error": run.error,
            "ccapp_version": run.ccapp_version,
        },
        # what the numbers rest on (engines/provenance.py): model revision, data hash, versions,
        # device, sampling; null for a run stored before ccapp recorded it
        "provenance": run.config.get("provenance"),
        "config": run.config,
    }


def _run_report(run: Any, now: str | None, version: str) -> dict[str, Any]:
    """A syn or train run: its settings and metrics (syn pairs: `--format pairs`)."""
    return {
        **_header(run, now, version),
        "metrics": run.metrics,
    }


def judge_of(store: Store, run: Run, judge: str | None = None) -> str:
    """Whose verdicts to read: `judge` (as --judge gave it) or the run's own, refused with
    the command that fills the gap when the run has none from it."""
    from ccapp.engines.judges.registry import check_judge_spec

    if run.kind is not RunKind.EVAL:
        raise UserError(
            f"run {run.id} is {run.kind.a_run}, not an eval run",
            fix="give eval runs (ccapp runs list --kind eval)",
        )
    chosen = check_judge_spec(judge) if judge else run.judge
    present = rows_store.judges_of(store, run.id)
    if chosen not in present:
        raise UserError(
            f"run {run.id} has no verdicts from {chosen} (it has: {', '.join(present) or 'none'})",
            where="--judge",
            fix=f"judge it first: ccapp judge {run.id} --judge {chosen}",
        )
    return chosen


def paper_result(store: Store, run_id: int, judge: str | None = None) -> list[float | None]:
    """The paper's file format: [Corr@10, …, Corr@80, Corr_mean]."""
    run = runs.get_run(store, run_id)
    ks = [int(k) for k in run.config.get("ks", [])]
    chosen = judge_of(store, run, judge)
    metrics = run_metrics(store, run, chosen)
    if metrics["corr_mean"] is None:  # the paper's list has no place for "not measured"
        missing = metrics["no_verdicts"]
        counts = ", ".join(
            f"k={k}: {metrics['unparsed'][k]} unparsed, {metrics['errors'][k]} errors"
            for k in missing
        )
        raise UserError(
            f"run {run.id} has no Corr_mean from {chosen}: {metrics['corr_mean_reason']}"
            + (f" ({counts})" if counts else ""),
            where="--format paper",
            fix=f"re-judge the errors (ccapp judge {run.id} --judge {chosen}; --redo-unparsed "
            "for unparsed answers), or export --format report for the per-k numbers",
        )
    return paper_list(metrics, ks)


def report_text(document: Any, *, paper: bool = False) -> str:
    """The exact bytes `ccapp export` and the app write: one format, one function."""
    return json.dumps(document, indent=None if paper else 2, ensure_ascii=False) + "\n"


def write_new_file(path: Path, text: str | bytes, *, force: bool) -> None:
    """Write `path` atomically (text as UTF-8, bytes as they are); an existing file is kept
    unless `force` says otherwise."""
    from ccapp.engines.c2eval.output_file import new_output

    with new_output(path, force=force) as partial:
        partial.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
