"""`ccapp judge`: judge a run's stored continuations, or labelled rows from a file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ccapp.cli.common import add_db_option, add_judge_max_tokens_option, open_store, print_json
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.errors import UserError

BATCH_POLL_HELP = (
    "with --judge-batch: seconds between status checks at first, growing while nothing "
    "changes (default 5)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "judge",
        help="judge or re-judge a run's continuations (no generation), or rows of a file",
        description="ccapp judge RUN --judge J: judge what J has not judged in a run (resumable; "
        "cached verdicts cost nothing). ccapp judge --input F --judge J: judge rows "
        "{request, prefill, continuation[, label]} and, with labels, score the judge.",
    )
    add_db_option(p)
    p.add_argument("run", metavar="RUN", type=run_id_arg, nargs="?", help="the run to judge")
    p.add_argument(
        "--input",
        metavar="FILE",
        type=Path,
        help=".jsonl rows {request, prefill, continuation[, label: yes|no]}",
    )
    p.add_argument(
        "--judge",
        required=True,
        help="heuristic, gpt-4o, openai:NAME, openai:NAME@URL or hf:PATH_OR_ID",
    )
    p.add_argument(
        "--judge-concurrency",
        type=int,
        default=8,
        metavar="N",
        help="parallel requests to an API judge (default 8)",
    )
    add_judge_max_tokens_option(p)
    p.add_argument(
        "--judge-batch",
        action="store_true",
        help="judge RUN through OpenAI's Batch API: half the price, results within 24 h; "
        "a killed ccapp resumes the same batch when run again",
    )
    p.add_argument("--batch-poll", type=float, metavar="S", help=BATCH_POLL_HELP)
    p.add_argument("--device", default="auto", help="for hf: judges (default auto)")
    p.add_argument(
        "--redo-unparsed",
        action="store_true",
        help="also ask again where the judge's answer was neither yes nor no",
    )
    p.add_argument(
        "--force", action="store_true", help="judge everything again, ignoring the cache"
    )
    p.add_argument("--events", choices=["jsonl"], help="progress as JSON lines on stdout")
    p.add_argument("--json", action="store_true", help="end with a one-line JSON summary")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.engines.generation.models import parse_device
    from ccapp.engines.judges.registry import JudgeOptions

    if (args.run is None) == (args.input is None):
        raise UserError(
            "give either a RUN or --input FILE", fix="e.g. ccapp judge 3 --judge gpt-4o"
        )
    if args.judge_concurrency < 1:
        raise UserError("must be at least 1", where="--judge-concurrency", fix="give 1 or more")
    if args.judge_max_tokens is not None and args.judge_max_tokens < 1:
        raise UserError("must be at least 1", where="--judge-max-tokens", fix="give 1 or more")
    if args.judge_batch and args.input is not None:
        raise UserError(
            "--judge-batch judges a stored run, not a file",
            where="--judge-batch",
            fix="judge the file without it, or give a RUN",
        )
    if args.batch_poll is not None and args.batch_poll <= 0:
        raise UserError("must be more than 0", where="--batch-poll", fix="give seconds, e.g. 5")
    batch = None
    if args.judge_batch:
        from ccapp.engines.judges.openai_batch import BatchSettings

        batch = (
            BatchSettings() if args.batch_poll is None else BatchSettings(poll_s=args.batch_poll)
        )
    options = JudgeOptions(
        concurrency=args.judge_concurrency,
        device=parse_device(args.device),
        max_tokens=args.judge_max_tokens,
        batch=batch,
    )
    if args.input is not None:
        return judge_file(args, options)
    return judge_run(args, options)


def judge_run(args: argparse.Namespace, options: Any) -> int:
    from ccapp.cli.jobs import cancellation, make_sink, run_job
    from ccapp.engines.c2eval.report import run_metrics
    from ccapp.engines.events import RunFinished
    from ccapp.engines.judges.registry import make_judge
    from ccapp.engines.judges.runner import judge_stored
    from ccapp.store import RunKind, runs

    with open_store(args) as store, cancellation() as cancel:
        run = runs.get_run(store, args.run)
        if run.kind is not RunKind.EVAL:
            raise UserError(
                f"run {run.id} is {run.kind.a_run}; only eval runs are judged",
                fix="pick an eval run (ccapp runs list --kind eval)",
            )
        judge = make_judge(args.judge, options)
        sink = make_sink(args.events, lambda: run.id)

        def job() -> Any:
            counts = judge_stored(
                store,
                run.id,
                judge,
                sink=sink,
                cancel=cancel,
                redo_unparsed=args.redo_unparsed,
                everything=args.force,
            )
            metrics = run_metrics(store, run, judge.spec)
            if judge.spec == run.judge:  # the run's own judge: its stored metrics follow
                runs.set_metrics(store, run.id, metrics)
            metrics = metrics | {"judged_now": counts["judged"]}
            metrics |= {key: counts[key] for key in ("batch", "cost_estimate") if key in counts}
            sink.emit(RunFinished(status="done", metrics=metrics))
            return JudgeOutcome(run.id, run.model, metrics)

        return run_job(
            job,
            run_id=lambda: run.id,
            kind="judge",
            json_summary=args.json,
            sink=sink,
            resume_hint=f"ccapp judge {{}} --judge {args.judge}"
            + (" --judge-batch" if args.judge_batch else ""),
        )


class JudgeOutcome:
    """What run_job needs of a finished judging job (it looks like a run)."""

    def __init__(self, run_id: int, model: str, metrics: dict[str, Any]):
        from ccapp.store import RunKind, RunStatus

        self.id, self.model, self.metrics = run_id, model, metrics
        self.kind, self.status = RunKind.EVAL, RunStatus.DONE


def judge_file(args: argparse.Namespace, options: Any) -> int:
    from ccapp.engines.judges.agreement import calibrate
    from ccapp.engines.judges.base import JudgeInput
    from ccapp.engines.judges.heuristic import find_correction
    from ccapp.engines.judges.registry import make_judge
    from ccapp.engines.judges.runner import cost_estimate, judge_with_cache

    rows = read_labelled_rows(args.input)
    judge = make_judge(args.judge, options)
    inputs = [JudgeInput(r["request"], r["prefill"], r["continuation"]) for r in rows]
    with open_store(args) as store:
        estimate = cost_estimate(store, judge, inputs, use_cache=not args.force)
        if estimate is not None:
            print(f"ccapp: {estimate.line()}", file=sys.stderr)
        verdicts, _calls = judge_with_cache(store, judge, inputs, use_cache=not args.force)
    pairs = []
    for row, verdict in zip(rows, verdicts):
        span = verdict.span or (
            find_correction(row["continuation"], row["prefill"]) if verdict.label == "yes" else None
        )
        print_json(
            {
                "line": row["line"],
                "label": verdict.label,
                "score": verdict.score,
                "span": list(span) if span else None,
                "relapse": verdict.relapse,
                "raw": verdict.raw,
            }
        )
        if row.get("label") is not None:
            pairs.append((row["label"], verdict.label))
    summary = (calibrate(pairs).as_dict() if pairs else {"n": 0}) | {
        "judge": judge.spec,
        "rows": len(rows),
    }
    if estimate is not None:
        summary["cost_estimate"] = estimate.as_dict()
    adjustments = getattr(judge, "adjustments", [])  # what the server refused, said once
    for message in adjustments:
        print(f"ccapp: warning: judge: {message}", file=sys.stderr)
    if adjustments:
        settings = judge.settings.as_dict()  # type: ignore[attr-defined]
        summary["judge_settings"] = settings | {"adjustments": adjustments}
    if args.json:
        print_json({"run_id": None, "kind": "judge", "status": "done", "metrics": summary})
    elif pairs:
        from ccapp.cli.common import console

        console().print(
            f"{judge.spec} vs labels: n={summary['n']} accuracy={summary['accuracy']} "
            f"precision={summary['precision']} recall={summary['recall']} "
            f"kappa={summary['kappa']} unparsed={summary['unparsed']} errors={summary['errors']}",
            markup=False,
        )
    return 0


def read_labelled_rows(path: Path) -> list[dict[str, Any]]:
    """Rows {request, prefill, continuation[, label]}, each checked with its line number."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = f"cannot read the file ({exc.strerror})"
        raise UserError(problem, where=str(path), fix="check the path given to --input") from None
    rows = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError("not UTF-8 text", where=where, fix="save the file as UTF-8") from None
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"not a JSON object ({exc.msg})", where=where, fix="correct the line"
            ) from None
        if not isinstance(obj, dict):
            raise UserError("expected a JSON object", where=where, fix="one object per line")
        for name in ("request", "prefill", "continuation"):
            if not isinstance(obj.get(name), str):
                raise UserError(
                    f"field '{name}' must be a string",
                    where=where,
                    fix="give request, prefill and continuation as strings",
                )
        label = obj.get("label")
        if label is not None:
            if not isinstance(label, str) or label.strip().lower() not in ("yes", "no"):
                raise UserError(
                    f'label must be "yes" or "no", got {json.dumps(label)}',
                    where=where,
                    fix="use yes (the continuation corrects) or no",
                )
            label = label.strip().lower()
        rows.append(
            {
                "line": number,
                "request": obj["request"],
                "prefill": obj["prefill"],
                "continuation": obj["continuation"],
                "label": label,
            }
        )
    if not rows:
        raise UserError("no rows", where=str(path), fix="give one JSON object per line")
    return rows
