"""`ccapp eval`: a C2-Eval run (or `--resume RUN` to finish one)."""

from __future__ import annotations

from typing import Any

from ccapp.cli.jobs import JobCommand
from ccapp.engines.c2eval.config import EvalConfig
from ccapp.errors import UserError


def with_configured_device(options: dict[str, Any]) -> EvalConfig:
    """A new run's config: the device and dtype of config.toml where none is given."""
    from ccapp.config import load_settings
    from ccapp.engines.generation.models import parse_device, parse_dtype

    settings = load_settings()
    try:
        options.setdefault("device", parse_device(settings.device))
        options.setdefault("dtype", parse_dtype(settings.dtype))
    except UserError as exc:  # the value came from config.toml, not from an option
        raise UserError(
            f"[models] {exc.problem}", where=str(settings.source), fix=exc.fix
        ) from None
    return EvalConfig(**options)


COMMAND = JobCommand(
    "eval",
    EvalConfig,
    "ccapp.engines.c2eval.evaluate:Evaluation",
    example="ccapp eval --model qwen_05 --data c2-eval (or --resume RUN)",
    resume_help="finish an interrupted run; it keeps its settings",
    new_config=with_configured_device,
)
register = COMMAND.register
