"""A run's settings as one line: what its job's config declares shown (Option.shown), then
where its model and data resolved to. Its page in the app and `ccapp runs show` print it."""

from __future__ import annotations

import json
from typing import Any

from ccapp.engines.c2eval.config import EvalConfig
from ccapp.engines.c2syn.config import SynConfig
from ccapp.engines.dpo.config import TrainConfig
from ccapp.engines.options import shown_settings
from ccapp.store import Run, RunKind

PROVENANCE = ("model_source", "data_location")
SHOWN_SETTINGS = {
    RunKind.EVAL: shown_settings(EvalConfig) + PROVENANCE,
    RunKind.SYN: shown_settings(SynConfig) + PROVENANCE,
    RunKind.TRAIN: shown_settings(TrainConfig) + PROVENANCE,
}


def show_value(value: Any) -> str:
    """A stored setting as the settings line shows it."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, (dict, type(None))):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def settings_line(run: Run) -> str:
    """key=value with no space inside, so that a narrow screen wraps between settings only."""
    return " · ".join(
        f"{k}={show_value(run.config[k])}"
        for k in SHOWN_SETTINGS.get(run.kind, ())
        if k in run.config
    )
