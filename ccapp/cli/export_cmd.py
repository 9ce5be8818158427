"""`ccapp export RUN`: a run's JSON report, or the paper's result list."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ccapp.cli.common import add_db_option, open_store
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a run's JSON report (or the paper's list)")
    add_db_option(p)
    p.add_argument("run", metavar="RUN", type=run_id_arg)
    p.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="where to write (default: reports/run-RUN[-paper].json in the data folder; "
        "- for stdout)",
    )
    p.add_argument(
        "--format",
        choices=["report", "paper"],
        default="report",
        help="report: everything, versioned (default); paper: [Corr@10, …, Corr@80, Corr_mean]",
    )
    p.add_argument("--judge", help="for --format paper: whose verdicts (default: the run's judge)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.config import paths
    from ccapp.engines.report import build_report, paper_result

    with open_store(args) as store:
        if args.format == "paper":
            document: object = paper_result(store, args.run, args.judge)
        else:
            document = build_report(store, args.run)
    text = json.dumps(document, indent=None if args.format == "paper" else 2, ensure_ascii=False)
    if args.out is not None and str(args.out) == "-":
        print(text)
        return 0
    suffix = "-paper" if args.format == "paper" else ""
    out: Path = args.out or paths().reports_dir / f"run-{args.run}{suffix}.json"
    write_new_file(out, text + "\n", force=args.force)
    print(out)
    return 0


def write_new_file(path: Path, text: str, *, force: bool) -> None:
    """Write `path` atomically; an existing file is kept unless --force says otherwise."""
    path = path.expanduser()
    if path.is_dir():
        raise UserError("is a folder", where=str(path), fix="give a file name, e.g. report.json")
    if path.exists() and not force:
        raise UserError(
            "exists; nothing was written",
            where=str(path),
            fix="choose another --out, or pass --force to overwrite it",
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise UserError(
            f"cannot write ({exc.strerror})",
            where=str(path),
            fix="choose a writable location with --out",
        ) from None
