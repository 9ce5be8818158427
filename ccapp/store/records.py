"""Typed records the store hands out; screens and engines never see raw rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, TypeVar

INTERRUPTED = "interrupted:"  # how store.runs.as_seen starts the error of a run it found gone


class RunKind(str, Enum):
    EVAL = "eval"
    SYN = "syn"
    TRAIN = "train"

    @property
    def a_run(self) -> str:
        """ "an eval run", "a syn run": how messages name the kind."""
        return f"{'an' if self.value[0] in 'aeiou' else 'a'} {self.value} run"


class RunStatus(str, Enum):
    RUNNING = "running"
    PAUSED = "paused"
    FAILED = "failed"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def resumable(self) -> bool:
        return self in (RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.FAILED)


R = TypeVar("R")


def from_row(cls: type[R], row: Mapping[str, Any], **changed: Any) -> R:
    """A record from a store row whose columns carry its fields' names (`changed`: values
    SQLite cannot hold as they are, e.g. a bool stored as 0/1)."""
    return cls(**{f.name: row[f.name] for f in fields(cls)} | changed)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Run:
    id: int
    kind: RunKind
    status: RunStatus
    model: str
    data: str
    judge: str
    config: dict[str, Any]
    fingerprint: str
    metrics: dict[str, Any]
    error: str | None
    parent_id: int | None
    ccapp_version: str
    created_at: str
    updated_at: str
    finished_at: str | None
    pid: int | None = None
    host: str | None = None
    # Time spent running, summed over its starts and resumes (not the pauses between).
    seconds_running: float = 0.0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        return cls(
            id=row["id"],
            kind=RunKind(row["kind"]),
            status=RunStatus(row["status"]),
            model=row["model"],
            data=row["data"],
            judge=row["judge"],
            config=json.loads(row["config"]),
            fingerprint=row["fingerprint"],
            metrics=json.loads(row["metrics"]),
            error=row["error"],
            parent_id=row["parent_id"],
            ccapp_version=row["ccapp_version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            pid=row.get("pid"),
            host=row.get("host"),
            seconds_running=row.get("seconds_running") or 0.0,
        )

    @property
    def corr_mean(self) -> float | None:
        value = self.metrics.get("corr_mean")
        return float(value) if value is not None else None

    @property
    def interrupted(self) -> bool:
        """Read as interrupted: stored running, its process gone (store.runs.as_seen)."""
        return self.status is RunStatus.PAUSED and (self.error or "").startswith(INTERRUPTED)

    @property
    def status_text(self) -> str:
        """The status a list shows: `interrupted` for a run whose process is gone."""
        return "interrupted" if self.interrupted else self.status.value

    def listed(self) -> list[str]:
        """What a list of runs shows of it (`ccapp runs list`, Home): id, kind, status, model,
        judge and Corr_mean, "–" for what it has none of; each list adds its own dates."""
        corr = f"{self.corr_mean:.3f}" if self.corr_mean is not None else "–"
        kind, status = self.kind.value, self.status_text
        return [str(self.id), kind, status, self.model, self.judge or "–", corr]


@dataclass(frozen=True)
class Item:
    id: int
    idx: int  # position in the source data
    request: str
    harmful_response: str
    safe_response: str | None
    source_line: int | None = None


@dataclass(frozen=True)
class NewCell:
    """One (item, k) of an eval run as it is written: the prefill and the exact prompt."""

    item_id: int
    k: int
    opener: str
    prefill: str
    rendered_prompt: str
    prompt_tokens: int
    short: bool
    prefill_tokens: int | None = None  # tokens of the rendered prompt the prefill takes


@dataclass(frozen=True, kw_only=True)
class Cell(NewCell):
    """A stored cell: what was written, with its id and its item's index in the data
    (prefill_tokens is None for cells stored before ccapp counted them)."""

    id: int
    item_idx: int


@dataclass(frozen=True)
class StoredVerdict:
    judge: str
    label: str
    score: float | None
    raw: str | None
    span: tuple[int, int] | None
    tokens_to_correction: int | None
    relapse: bool


@dataclass(frozen=True)
class Continuation:
    id: int
    cell_id: int
    item_idx: int
    k: int
    path: int
    text: str
    new_tokens: int
    finish_reason: str
    verdicts: dict[str, StoredVerdict]  # by judge spec
