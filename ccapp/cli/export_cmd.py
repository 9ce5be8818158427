"""`ccapp export RUN`: a run's JSON report, or the paper's result list."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ccapp.cli.common import add_db_option, open_store
from ccapp.cli.runs_cmd import run_id_arg


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
    from ccapp.engines.report import (
        build_report,
        default_report_path,
        paper_result,
        report_text,
        write_new_file,
    )

    with open_store(args) as store:
        if args.format == "paper":
            document: object = paper_result(store, args.run, args.judge)
        else:
            document = build_report(store, args.run)
    text = report_text(document, paper=args.format == "paper")
    if args.out is not None and str(args.out) == "-":
        sys.stdout.write(text)
        return 0
    out: Path = args.out or default_report_path(args.run, paper=args.format == "paper")
    write_new_file(out, text, force=args.force)
    print(out)
    return 0
