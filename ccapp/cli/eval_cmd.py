"""`ccapp eval`: a C2-Eval run (or `--resume RUN` to finish one)."""

from __future__ import annotations

import argparse

from ccapp.cli.common import add_db_option, open_store
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
    p.add_argument(
        "--resume", type=int, metavar="RUN", help="finish an interrupted run; it keeps its settings"
    )
    p.add_argument("--events", choices=["jsonl"], help="progress as JSON lines on stdout")
    p.add_argument("--json", action="store_true", help="end with a one-line JSON summary")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.cli.jobs import cancellation, make_sink, run_job
    from ccapp.config import load_settings
    from ccapp.engines.c2eval.evaluate import Evaluation
    from ccapp.engines.generation.models import parse_device, parse_dtype
    from ccapp.store import runs

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
    with open_store(args) as store, cancellation() as cancel:
        evaluation: Evaluation | None = None

        def run_id() -> int | None:
            return evaluation.run.id if evaluation and evaluation.run else None

        def status() -> str | None:
            rid = run_id()
            return runs.get_run(store, rid).status.value if rid is not None else None

        sink = make_sink(args.events, run_id)
        evaluation = Evaluation(store, sink, cancel)
        job = (
            (lambda: evaluation.resume(args.resume, options))
            if args.resume is not None
            else (lambda: evaluation.start(config))
        )
        return run_job(
            job,
            run_id=run_id,
            kind="eval",
            json_summary=args.json,
            sink=sink,
            resume_hint="ccapp eval --resume {}",
            status=status,
        )
