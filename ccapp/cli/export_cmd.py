"""`ccapp export RUN`: a run's JSON report, or the paper's result list."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ccapp.cli.common import add_db_option, open_store
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="write a run's JSON report, the paper's list, or a syn run's pairs dataset"
    )
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
        choices=["report", "paper", "pairs"],
        default="report",
        help="report: everything, versioned (default); paper: [Corr@10, …, Corr@80, Corr_mean]; "
        "pairs: a syn run's preference pairs as a datasets folder (--out DIR) for DPOTrainer",
    )
    p.add_argument(
        "--jsonl", action="store_true", help="for --format pairs: train.jsonl, not parquet"
    )
    p.add_argument("--judge", help="for --format paper: whose verdicts (default: the run's judge)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.engines.c2eval.report import (
        build_report,
        default_report_path,
        paper_result,
        report_text,
        write_new_file,
    )

    if args.format == "pairs":
        return export_pairs_dataset(args)
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


def export_pairs_dataset(args: argparse.Namespace) -> int:
    from ccapp.engines.c2syn.pairs_export import export_pairs

    if args.out is None or str(args.out) == "-":
        raise UserError(
            "pairs need a folder", where="--out", fix="e.g. --out ./pairs (new or empty)"
        )
    with open_store(args) as store:
        meta = export_pairs(store, args.run, args.out, jsonl=args.jsonl, force=args.force)
    print(
        f"{args.out}: {meta['pairs']} pairs from {meta['groups']} groups ({', '.join(meta['files'])})"
    )
    return 0
