"""`ccapp data inspect D`: what a data file or dataset holds, or what is wrong with it."""

from __future__ import annotations

import argparse

from ccapp.cli.common import console, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="inspect data files and datasets")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    inspect = actions.add_parser(
        "inspect",
        help="rows, unique prompts and harmful-response lengths of D, or its first problem",
    )
    inspect.add_argument(
        "data", metavar="D", help="c2-eval, a .jsonl/.json/.parquet file, or a Hub id[:split]"
    )
    inspect.add_argument(
        "--lenient", action="store_true", help="skip bad rows and count them instead of stopping"
    )
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.set_defaults(handler=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    from ccapp.engines.data import load_dataset_rows, summarize

    summary = summarize(load_dataset_rows(args.data, lenient=args.lenient))
    if args.json:
        print_json(summary.as_dict())
        return 0
    from rich.table import Table

    table = Table(show_header=False, title=summary.location, title_justify="left")
    table.add_row("rows", str(summary.rows))
    table.add_row("unique prompts", str(summary.unique_prompts))
    table.add_row(
        "harmful response words",
        f"min {summary.words_min} · median {summary.words_median:g} · max {summary.words_max}",
    )
    for k, n in summary.shorter_than.items():
        table.add_row(f"shorter than {k} words", str(n))
    table.add_row("rows with a safe response", str(summary.with_safe_response))
    if summary.sha256:
        table.add_row("sha256", summary.sha256)
    for reason, n in summary.skipped.items():
        table.add_row(f"skipped: {reason}", str(n))
    console().print(table)
    return 0
