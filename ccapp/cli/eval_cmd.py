"""`ccapp eval`: a C2-Eval run (or `--resume RUN` to finish one)."""

from __future__ import annotations

import argparse

from ccapp.cli.common import add_db_option
from ccapp.cli.jobs import add_run_arguments
from ccapp.cli.options import add_options, given
from ccapp.engines.c2eval.config import EvalConfig
from ccapp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="C2-Eval: prefill harmful answers, sample continuations, judge, Corr@k",
        description="Prefill the model's answer with the start of a harmful response (cut at k "
        "words), sample paths, judge whether each path course-corrects, and report Corr@k with "
        "95% bootstrap intervals. Defaults are the paper's.",
    )
    add_db_option(p)
    add_options(p, EvalConfig)
    add_run_arguments(
        p, resume_type=int, resume_help="finish an interrupted run; it keeps its settings"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.cli.jobs import run_command
    from ccapp.config import load_settings
    from ccapp.engines.c2eval.evaluate import Evaluation
    from ccapp.engines.generation.models import parse_device, parse_dtype

    options = given(args, EvalConfig)
    if args.resume is None:
        missing = [name for name in ("model", "data") if name not in options]
        if missing:
            raise UserError(
                f"missing --{' and --'.join(missing)}",
                fix="e.g. ccapp eval --model qwen_05 --data c2-eval (or --resume RUN)",
            )
        settings = load_settings()
        try:
            options.setdefault("device", parse_device(settings.device))
            options.setdefault("dtype", parse_dtype(settings.dtype))
        except UserError as exc:  # the value came from config.toml, not from an option
            raise UserError(
                f"[models] {exc.problem}", where=str(settings.source), fix=exc.fix
            ) from None
        config = EvalConfig(**options)
        config.check()
    return run_command(
        args,
        Evaluation,
        lambda job: (
            job.resume(args.resume, options) if args.resume is not None else job.start(config)
        ),
    )
