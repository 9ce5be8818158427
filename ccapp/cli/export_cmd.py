"""write a run's JSON report, the paper's list, its samples table, an HTML report, or a syn run's pairs dataset

ccapp export RUN writes the versioned JSON report (default); --format paper the paper's
[Corr@10, …, Corr@80, Corr_mean]; --format samples one row per continuation × judge verdict
(parquet, JSON lines or CSV, by the suffix of --out) for pandas and datasets; --format html one
self-contained page to open in any browser, offline; --format pairs a syn run's preference pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ccapp.cli.common import add_command, open_store
from ccapp.cli.runs_cmd import run_id_arg
from ccapp.engines.exports import FORMATS
from ccapp.store import runs


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "export", __doc__)
    p.add_argument("run", metavar="RUN", type=run_id_arg)
    p.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="where to write (default: reports/run-RUN[-paper].json, run-RUN-samples.parquet or "
        "run-RUN.html in the data folder; - for stdout)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="default: what the suffix of --out says (.json report, .html, .parquet/.jsonl/.csv "
        "samples; a syn run's folder: pairs), else report. report: everything, versioned; paper: [Corr@10, …, Corr@80, Corr_mean]; "
        "samples: one row per continuation × judge verdict, as --out F.parquet, F.jsonl or F.csv "
        "(- : JSON lines on stdout); html: one self-contained page with settings, Corr@k table "
        "and figure, judge agreement and a continuation browser; "
        "pairs: a syn run's preference pairs as a datasets folder (--out DIR) for DPOTrainer",
    )
    p.add_argument(
        "--jsonl", action="store_true", help="for --format pairs: train.jsonl, not parquet"
    )
    p.add_argument("--judge", help="for --format paper: whose verdicts (default: the run's judge)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ccapp.engines.exports import export_format, write_export

    with open_store(args) as store:
        run_kind = runs.get_run(store, args.run).kind
        fmt = export_format(args.out, args.format, run_kind)
        done = write_export(
            store, args.run, fmt, args.out, force=args.force, judge=args.judge, jsonl=args.jsonl
        )
    if done.note:
        print(f"ccapp: note: {done.note}", file=sys.stderr)
    if done.path is not None:
        print(f"{done.path}: {done.summary}" if done.summary else done.path)
    return 0
