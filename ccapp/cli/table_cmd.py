"""`ccapp table RUN…`: the paper's table of eval runs (Markdown, CSV or LaTeX) on stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ccapp.cli.common import add_db_option, open_store
from ccapp.cli.runs_cmd import run_id_arg

FORMATS = ("markdown", "csv", "latex")  # as engines/c2eval/table.py renders them


def register(subparsers: argparse._SubParsersAction) -> None:
    p = runs_command(
        subparsers, "table", "Corr@k and Corr_mean of eval runs as a Markdown, CSV or LaTeX table"
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="markdown",
        help="markdown (a pipe table, default), csv (numbers for pandas) or latex (booktabs)",
    )
    p.add_argument(
        "--baseline",
        metavar="RUN",
        type=run_id_arg,
        help="add each run's paired Δ against this eval run (same requests only)",
    )
    p.set_defaults(handler=run)


def runs_command(subparsers: argparse._SubParsersAction, name: str, help: str) -> Any:
    """A command over several eval runs (table, plot): --db, RUN… and one --judge for all."""
    p = subparsers.add_parser(name, help=help)
    add_db_option(p)
    p.add_argument("runs", metavar="RUN", type=run_id_arg, nargs="+", help="eval runs")
    p.add_argument(
        "--judge", metavar="J", help="whose verdicts, for every run (default: each run's judge)"
    )
    return p


def run(args: argparse.Namespace) -> int:
    from ccapp.engines.c2eval.table import build_table, render

    with open_store(args) as store:
        table = build_table(store, args.runs, judge=args.judge, baseline=args.baseline)
    sys.stdout.write(render(table, args.format))
    return 0
