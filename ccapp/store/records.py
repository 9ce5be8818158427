"""Typed records the store hands out; screens and engines never see raw rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any


class RunKind(str, Enum):
    EVAL = "eval"
    SYN = "syn"
    TRAIN = "train"


class RunStatus(str, Enum):
    RUNNING = "running"
    PAUSED = "paused"
    FAILED = "failed"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def resumable(self) -> bool:
        return self in (RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.FAILED)


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
        )

    @property
    def corr_mean(self) -> float | None:
        value = self.metrics.get("corr_mean")
        return float(value) if value is not None else None


@dataclass(frozen=True)
class Item:
    id: int
    idx: int  # position in the source data
    request: str
    harmful_response: str
    safe_response: str | None
    source_line: int | None = None


@dataclass(frozen=True)
class Cell:
    """One (item, k) of an eval run: the prefill and the exact prompt the model saw."""

    id: int
    item_id: int
    item_idx: int
    k: int
    opener: str
    prefill: str
    rendered_prompt: str
    prompt_tokens: int
    short: bool
    prefill_tokens: int | None = None  # None: stored before ccapp counted them


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
