"""`ccapp syn`: C2-Syn preference groups (or `--resume RUN` to finish a run)."""

from __future__ import annotations

import argparse

from ccapp.cli.common import add_db_option
from ccapp.cli.jobs import add_run_arguments
from ccapp.cli.options import add_options, given
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.engines.c2syn.config import SynConfig
from ccapp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "syn",
        help="C2-Syn: six ranked responses per harmful request, 15 preference pairs each",
        description="For each harmful request: the model's own safe answer, four continuations "
        "after a corrective trigger at four cut points of the harmful response, and the harmful "
        "response itself, ranked safe > SYN1 > … > SYN4 > harmful. Defaults follow the paper.",
    )
    add_db_option(p)
    add_options(p, SynConfig)
    add_run_arguments(p, resume_type=run_id_arg, resume_help="finish an interrupted syn run")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.cli.jobs import run_command
    from ccapp.engines.c2syn.synthesize import Synthesis

    options = given(args, SynConfig)
    if args.resume is None:
        if "model" not in options:
            raise UserError("missing --model", fix="e.g. ccapp syn --model qwen_05 --limit 100")
        if "data" in options and "from_run" in options:
            raise UserError(
                "give --data or --from-run, not both",
                where="--from-run",
                fix="drop --data to use the eval run's requests, or drop --from-run",
            )
        if "from_run" in options:
            options["data"] = None
        config = SynConfig(**options)
        config.check()
    return run_command(
        args,
        Synthesis,
        lambda job: (
            job.resume(args.resume, options) if args.resume is not None else job.start(config)
        ),
    )
