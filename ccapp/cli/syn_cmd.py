"""`ccapp syn`: C2-Syn preference groups (or `--resume RUN` to finish a run)."""

from __future__ import annotations

from typing import Any

from ccapp.cli.jobs import JobCommand
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.engines.c2syn.config import SynConfig
from ccapp.errors import UserError


def requests_from_one_source(options: dict[str, Any]) -> SynConfig:
    """A new run's config, its requests from --data or from --from-run, not both."""
    if "data" in options and "from_run" in options:
        raise UserError(
            "give --data or --from-run, not both",
            where="--from-run",
            fix="drop --data to use the eval run's requests, or drop --from-run",
        )
    if "from_run" in options:
        options["data"] = None
    return SynConfig(**options)


COMMAND = JobCommand(
    "syn",
    SynConfig,
    "ccapp.engines.c2syn.synthesize:Synthesis",
    example="ccapp syn --model qwen_05 --limit 100",
    resume_help="finish an interrupted syn run",
    resume_type=run_id_arg,
    new_config=requests_from_one_source,
)
register = COMMAND.register
