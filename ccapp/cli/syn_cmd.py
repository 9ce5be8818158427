"""`ccapp syn`: C2-Syn preference groups (or `--resume RUN` to finish a run)."""

from __future__ import annotations

import argparse
from typing import Any

from ccapp.cli.common import add_db_option, open_store
from ccapp.cli.runs_cmd import run_id_arg
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
    p.add_argument("--model", help="preset, Hugging Face id or folder (the model being aligned)")
    p.add_argument(
        "--data",
        help="a Hub id[:split] (default PKU-Alignment/PKU-SafeRLHF:train), a "
        ".jsonl/.json/.parquet file, or c2-eval",
    )
    p.add_argument(
        "--from-run",
        type=run_id_arg,
        metavar="RUN",
        help="instead of --data: the requests an eval run failed to correct",
    )
    p.add_argument("--limit", type=int, metavar="N", help="the first N requests after the filters")
    p.add_argument(
        "--all-prompts",
        action="store_true",
        default=None,
        help="keep every prompt (default: only prompts with how/what in them, as the paper)",
    )
    p.add_argument(
        "--question-rule",
        choices=["contains", "starts"],
        help="contains: 'how', 'what', 'How' or 'What' anywhere in the prompt (default, the "
        "paper's substring test); starts: the prompt starts with how/what",
    )
    p.add_argument(
        "--min-harmful-words",
        type=int,
        metavar="N",
        help="keep rows with an unsafe response longer than N words and use the first such "
        "(default 80, as the paper)",
    )
    p.add_argument(
        "--safe-source",
        choices=["model", "dataset"],
        help="the best response: the model's own answer to the bare request (default; judged "
        "with --verify-judge) or the row's safe response (rows without one are dropped)",
    )
    p.add_argument(
        "--max-new-tokens", type=int, metavar="N", help="tokens per generation (default 128)"
    )
    p.add_argument(
        "--completion",
        choices=["full", "sentence"],
        help="each SYN response ends where the model's completion ends (full, default, as the "
        "paper) or with the sentence that completes its trigger (sentence: the pair is about the "
        "correction point, not what a weak model writes after it)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        help="0 = greedy (default; the paper used diverse beam search, which transformers 5 "
        "only loads from the Hub)",
    )
    p.add_argument(
        "--top-p", type=float, help="nucleus sampling when temperature > 0 (default 1.0)"
    )
    p.add_argument(
        "--top-k",
        type=int,
        metavar="K",
        help="top-k filter when temperature > 0, 0 = off (default: the model's generation "
        "config, else 50, as generate)",
    )
    p.add_argument(
        "--repetition-penalty",
        type=float,
        metavar="P",
        help="1.0 = none; applies to greedy too (default: the model's generation config, else 1.0)",
    )
    p.add_argument("--seed", type=int, help="run seed (default 0)")
    p.add_argument(
        "--verify-judge",
        metavar="J",
        help="keep only groups whose SYN completions (judged after opener, cut and trigger) "
        "correct without relapse, whose safe answer refuses, and with no degenerate text",
    )
    p.add_argument("--engine", choices=["hf", "openai"])
    p.add_argument("--base-url", metavar="URL")
    p.add_argument("--served-model", metavar="NAME")
    p.add_argument("--device")
    p.add_argument("--dtype")
    p.add_argument("--load-in-4bit", action="store_true", default=None)
    p.add_argument("--batch-size", type=int, metavar="N", help="prompts per batch (5 per request)")
    p.add_argument(
        "--lenient", action="store_true", default=None, help="skip bad data rows and count them"
    )
    p.add_argument("--resume", type=run_id_arg, metavar="RUN", help="finish an interrupted syn run")
    p.add_argument("--events", choices=["jsonl"], help="progress as JSON lines on stdout")
    p.add_argument("--json", action="store_true", help="end with a one-line JSON summary")
    p.set_defaults(handler=run)


FIELDS = {
    "model": "model",
    "data": "data",
    "from_run": "from_run",
    "limit": "limit",
    "question_rule": "question_rule",
    "min_harmful_words": "min_harmful_words",
    "safe_source": "safe_source",
    "completion": "completion",
    "max_new_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "seed": "seed",
    "verify_judge": "verify_judge",
    "engine": "engine",
    "base_url": "base_url",
    "served_model": "served_model",
    "device": "device",
    "dtype": "dtype",
    "load_in_4bit": "load_in_4bit",
    "batch_size": "batch_size",
    "lenient": "lenient",
}


def given(args: argparse.Namespace) -> dict[str, Any]:
    from ccapp.engines.generation.models import parse_device, parse_dtype

    values = {
        field: getattr(args, option)
        for option, field in FIELDS.items()
        if getattr(args, option) is not None
    }
    if args.all_prompts:
        values["questions_only"] = False
    if "device" in values:
        values["device"] = parse_device(values["device"])
    if "dtype" in values:
        values["dtype"] = parse_dtype(values["dtype"])
    if "verify_judge" in values:
        from ccapp.engines.judges.registry import check_judge_spec

        values["verify_judge"] = check_judge_spec(values["verify_judge"], "--verify-judge")
    return values


def run(args: argparse.Namespace) -> int:
    from ccapp.cli.jobs import cancellation, make_sink, run_job
    from ccapp.engines.c2syn.synthesize import SynConfig, Synthesis
    from ccapp.store import runs

    options = given(args)
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
    with open_store(args) as store, cancellation() as cancel:
        synthesis: Synthesis | None = None

        def run_id() -> int | None:
            return synthesis.run.id if synthesis and synthesis.run else None

        def status() -> str | None:
            rid = run_id()
            return runs.get_run(store, rid).status.value if rid is not None else None

        sink = make_sink(args.events, run_id)
        synthesis = Synthesis(store, sink, cancel)
        job = (
            (lambda: synthesis.resume(args.resume, options))
            if args.resume is not None
            else (lambda: synthesis.start(config))
        )
        return run_job(
            job,
            run_id=run_id,
            kind="syn",
            json_summary=args.json,
            sink=sink,
            resume_hint="ccapp syn --resume {}",
            status=status,
        )
