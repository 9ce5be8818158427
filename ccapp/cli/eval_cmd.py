"""`ccapp eval`: a C2-Eval run (or `--resume RUN` to finish one)."""

from __future__ import annotations

import argparse
from typing import Any

from ccapp.cli.common import add_db_option, add_judge_max_tokens_option, open_store
from ccapp.errors import UserError

PAPER_KS = "10,20,30,40,50,60,70,80"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="C2-Eval: prefill harmful answers, sample continuations, judge, Corr@k",
        description="Prefill the model's answer with the start of a harmful response (cut at k "
        "words), sample paths, judge whether each path course-corrects, and report Corr@k with "
        "95% bootstrap intervals. Defaults are the paper's.",
    )
    add_db_option(p)
    # Defaults are None so that --resume can tell which options were given.
    p.add_argument("--model", help="preset (llama2, qwen_7, tiny, …), Hugging Face id, or folder")
    p.add_argument("--data", help="c2-eval, a .jsonl/.json/.parquet file, or a Hub id[:split]")
    p.add_argument("--k", metavar="K,K,…", type=_ks, help=f"prefix lengths (default {PAPER_KS})")
    p.add_argument(
        "--paths", type=int, metavar="B", help="continuation paths per (request, k) (default 20)"
    )
    p.add_argument("--max-new-tokens", type=int, metavar="N", help="tokens per path (default 32)")
    p.add_argument(
        "--temperature", type=float, help="sampling temperature; 0 = greedy (default 0.8)"
    )
    p.add_argument("--top-p", type=float, help="nucleus sampling (default 0.7)")
    p.add_argument(
        "--top-k",
        type=int,
        metavar="K",
        help="top-k filter, 0 = off (default: the model's generation config, else 50, as generate)",
    )
    p.add_argument(
        "--repetition-penalty",
        type=float,
        metavar="P",
        help="1.0 = none (default: the model's generation config, else 1.0, as generate)",
    )
    p.add_argument("--seed", type=int, help="run seed (default 0)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N requests")
    p.add_argument("--unit", choices=["words", "tokens"], help="what k counts (default words)")
    p.add_argument(
        "--judge", help="heuristic (default), gpt-4o, openai:NAME, openai:NAME@URL, hf:PATH_OR_ID"
    )
    p.add_argument(
        "--judge-concurrency",
        type=int,
        metavar="N",
        help="parallel requests to an API judge (default 8)",
    )
    add_judge_max_tokens_option(p)
    p.add_argument(
        "--engine",
        choices=["hf", "openai"],
        help="in-process transformers (hf, default) or an OpenAI-compatible server (openai)",
    )
    p.add_argument(
        "--base-url", metavar="URL", help="the server for --engine openai, e.g. http://host:8000/v1"
    )
    p.add_argument(
        "--served-model", metavar="NAME", help="model name on the server (default: --model)"
    )
    p.add_argument(
        "--concurrency", type=int, metavar="N", help="parallel server requests (default 8)"
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        metavar="S",
        help="seconds before a server request is retried (default 120)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help="retries of a failed server request, with backoff honouring Retry-After (default 5)",
    )
    p.add_argument("--device", help="cpu, cuda:N, mps or auto (default: config, else auto)")
    p.add_argument(
        "--dtype", help="auto, float32, bfloat16 or float16 (default: config, else auto)"
    )
    p.add_argument("--load-in-4bit", action="store_true", default=None, help="4-bit weights (CUDA)")
    p.add_argument(
        "--batch-size", type=int, metavar="N", help="rows per batch (default: from the device)"
    )
    p.add_argument(
        "--lenient", action="store_true", default=None, help="skip bad data rows and count them"
    )
    p.add_argument(
        "--resume", type=int, metavar="RUN", help="finish an interrupted run; it keeps its settings"
    )
    p.add_argument("--events", choices=["jsonl"], help="progress as JSON lines on stdout")
    p.add_argument("--json", action="store_true", help="end with a one-line JSON summary")
    p.set_defaults(handler=run)


def _ks(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a list of numbers like 10,20,40"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}': give positive numbers like 10,20,40")
    return values


OPTION_FIELDS = {
    "model": "model",
    "data": "data",
    "k": "ks",
    "paths": "paths",
    "max_new_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "seed": "seed",
    "limit": "limit",
    "unit": "unit",
    "judge": "judge",
    "judge_concurrency": "judge_concurrency",
    "judge_max_tokens": "judge_max_tokens",
    "engine": "engine",
    "base_url": "base_url",
    "served_model": "served_model",
    "concurrency": "concurrency",
    "request_timeout": "request_timeout",
    "max_retries": "max_retries",
    "device": "device",
    "dtype": "dtype",
    "load_in_4bit": "load_in_4bit",
    "batch_size": "batch_size",
    "lenient": "lenient",
}


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    values = {
        field: getattr(args, option)
        for option, field in OPTION_FIELDS.items()
        if getattr(args, option) is not None
    }
    if "device" in values:
        from ccapp.engines.generation.models import parse_device

        values["device"] = parse_device(values["device"])
    if "dtype" in values:
        from ccapp.engines.generation.models import parse_dtype

        values["dtype"] = parse_dtype(values["dtype"])
    return values


def run(args: argparse.Namespace) -> int:
    from ccapp.cli.jobs import cancellation, make_sink, run_job
    from ccapp.config import load_settings
    from ccapp.engines.c2eval.evaluate import EvalConfig, Evaluation
    from ccapp.engines.generation.models import parse_device, parse_dtype
    from ccapp.store import runs

    options = given_options(args)
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
