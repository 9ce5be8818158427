"""DPO training logs: one point per logged step, for the curves and the run's history."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


def add_point(
    store: Store, run_id: int, step: int, epoch: float | None, logs: dict[str, Any]
) -> None:
    """Store a logged step; a step logged again after a resume replaces the earlier one."""
    values = {column: _number(logs.get(key)) for column, key in FIELDS.items()}
    extra = {
        k: v for k, v in logs.items() if k not in FIELDS.values() and isinstance(v, (int, float))
    }
    with store.write() as db:
        db.conn.execute(
            f"INSERT OR REPLACE INTO train_log (run_id, step, epoch, {', '.join(values)}, extra, created_at) "
            f"VALUES (?, ?, ?, {', '.join('?' * len(values))}, ?, ?)",
            [run_id, step, epoch, *values.values(), json.dumps(extra), utc_now()],
        )


def points(store: Store, run_id: int) -> list[TrainPoint]:
    rows = store.rows("SELECT * FROM train_log WHERE run_id = ? ORDER BY step", [run_id])
    return [
        TrainPoint(
            r["step"],
            r["epoch"],
            r["loss"],
            r["reward_chosen"],
            r["reward_rejected"],
            r["reward_margin"],
            r["reward_accuracy"],
            r["learning_rate"],
        )
        for r in rows
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
