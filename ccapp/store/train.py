"""DPO training logs: one point per logged step, for the curves and the run's history.

A step's row holds the trainer's log of that step in its columns and everything else it
logged, as TRL names it, in `extra` (JSON). Eval logs (`--eval-fraction`) land in the same
row's `extra` under TRL's `eval_…` names ("eval_loss", "eval_rewards/accuracies", …), merged
with what is there: the train log and the eval of one step arrive one after the other, in
either order, and neither may erase the other. `points()` reads both back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from ccapp.store.db import Store, utc_now

# Column -> the key TRL logs it under.
FIELDS = {
    "loss": "loss",
    "reward_chosen": "rewards/chosen",
    "reward_rejected": "rewards/rejected",
    "reward_margin": "rewards/margins",
    "reward_accuracy": "rewards/accuracies",
    "learning_rate": "learning_rate",
    "samples_per_second": "train_samples_per_second",
}
# TrainPoint's eval attribute -> the key TRL logs it under (and `extra` keeps it under).
EVAL_FIELDS = {
    "eval_loss": "eval_loss",
    "eval_reward_chosen": "eval_rewards/chosen",
    "eval_reward_rejected": "eval_rewards/rejected",
    "eval_reward_margin": "eval_rewards/margins",
    "eval_reward_accuracy": "eval_rewards/accuracies",
}


@dataclass(frozen=True)
class TrainPoint:
    step: int
    epoch: float | None
    loss: float | None
    reward_chosen: float | None
    reward_rejected: float | None
    reward_margin: float | None
    reward_accuracy: float | None
    learning_rate: float | None
    # On the steps the eval split was scored (None elsewhere).
    eval_loss: float | None = None
    eval_reward_chosen: float | None = None
    eval_reward_rejected: float | None = None
    eval_reward_margin: float | None = None
    eval_reward_accuracy: float | None = None


def add_point(
    store: Store, run_id: int, step: int, epoch: float | None, logs: dict[str, Any]
) -> None:
    """Store a logged step; a step logged again after a resume replaces the earlier one's
    columns (its other keys are merged)."""
    values = {column: _number(logs.get(key)) for column, key in FIELDS.items()}
    extra = {
        k: v for k, v in logs.items() if k not in FIELDS.values() and isinstance(v, (int, float))
    }
    _upsert(store, run_id, step, epoch, values, extra)


def add_eval(
    store: Store, run_id: int, step: int, epoch: float | None, logs: dict[str, Any]
) -> None:
    """Store the eval split's scores at a step, beside that step's training log."""
    extra = {k: v for k, v in logs.items() if k.startswith("eval_") and isinstance(v, (int, float))}
    _upsert(store, run_id, step, epoch, {}, extra)


def _upsert(
    store: Store,
    run_id: int,
    step: int,
    epoch: float | None,
    values: dict[str, float | None],
    extra: dict[str, Any],
) -> None:
    columns = ["run_id", "step", "epoch", *values, "extra", "created_at"]
    updates = [f"{c} = excluded.{c}" for c in values]
    with store.write() as db:
        db.conn.execute(
            f"INSERT INTO train_log ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            "ON CONFLICT (run_id, step) DO UPDATE SET "
            + ", ".join(
                [
                    *updates,
                    "epoch = coalesce(excluded.epoch, train_log.epoch)",
                    "extra = json_patch(train_log.extra, excluded.extra)",
                    "created_at = excluded.created_at",
                ]
            ),
            [run_id, step, epoch, *values.values(), json.dumps(extra), utc_now()],
        )


def points(store: Store, run_id: int) -> list[TrainPoint]:
    """Every stored step, in order, with its eval scores where the eval split was scored."""
    rows = store.rows("SELECT * FROM train_log WHERE run_id = ? ORDER BY step", [run_id])
    columns = [f.name for f in fields(TrainPoint) if f.name in FIELDS]
    out = []
    for r in rows:
        extra = json.loads(r["extra"] or "{}")
        evals = {name: _number(extra.get(key)) for name, key in EVAL_FIELDS.items()}
        out.append(
            TrainPoint(step=r["step"], epoch=r["epoch"], **{c: r[c] for c in columns}, **evals)
        )
    return out


def eval_points(store: Store, run_id: int) -> list[TrainPoint]:
    """The steps at which the eval split was scored (the eval curves)."""
    return [p for p in points(store, run_id) if p.eval_loss is not None]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class EvalCost:
    """What an eval run cost: the continuations it stored, and the seconds from its start to
    its end (None while it has not finished). An eval of a trained model with the same
    settings makes as many; its time is the estimate the app shows before starting one."""

    run_id: int
    continuations: int
    seconds: float | None


def eval_cost(store: Store, run_id: int) -> EvalCost:
    """The cost of eval run `run_id`: its stored continuations and the time it ran."""
    from datetime import datetime

    row = store.conn.execute(
        "SELECT created_at, finished_at, status, seconds_running FROM runs WHERE id = ?",
        [run_id],
    ).fetchone()
    made = store.count("continuations", "run_id = ?", [run_id])
    seconds = None
    if row is not None and row[1] and row[2] == "done":
        if row[3]:  # the time it ran, its pauses left out
            seconds = float(row[3])
        else:  # a run stored before ccapp counted that: its wall clock
            start, end = datetime.fromisoformat(row[0]), datetime.fromisoformat(row[1])
            seconds = max(0.0, (end - start).total_seconds())
    return EvalCost(run_id, made, seconds)
