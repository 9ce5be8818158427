"""`ccapp plot RUN… --out FIG`: the paper's figure, Corr@k against k for eval runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccapp.cli.common import open_store
from ccapp.cli.table_cmd import runs_command


def register(subparsers: argparse._SubParsersAction) -> None:
    p = runs_command(
        subparsers, "plot", "a figure of Corr@k against k with 95%% bands, one line per eval run"
    )
    p.add_argument(
        "--out", metavar="FIG", type=Path, required=True, help="FIG.png, FIG.svg or FIG.pdf"
    )
    p.add_argument("--title", metavar="T", help="the figure's title (default: none)")
    p.add_argument("--force", action="store_true", help="overwrite FIG if it exists")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.engines.c2eval import figure

    figure.figure_format(args.out)  # a wrong suffix is refused before any work
    with open_store(args) as store:
        curves = figure.run_curves(store, args.runs, args.judge)
    drawn = figure.corr_at_k_figure(curves, title=args.title)
    figure.save_figure(drawn, args.out, force=args.force)
    print(args.out)
    return 0
