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
from ccapp.errors import UserError
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
        choices=["report", "paper", "samples", "html", "pairs"],
        default="report",
        help="report: everything, versioned (default); paper: [Corr@10, …, Corr@80, Corr_mean]; "
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
    from ccapp.engines.c2eval.report import (
        build_report,
        default_report_path,
        paper_result,
        report_text,
        write_new_file,
    )

    if args.format == "pairs":
        return export_pairs_dataset(args)
    if args.format == "samples":
        return export_samples_table(args)
    if args.format == "html":
        return export_html_report(args)
    with open_store(args) as store:
        if args.format == "paper":
            document: object = paper_result(store, args.run, args.judge)
            say_which_ks(runs.get_run(store, args.run).config.get("ks", []))
        else:
            document = build_report(store, args.run)
    text = report_text(document, paper=args.format == "paper")
    if _to_stdout(args):
        sys.stdout.write(text)
        return 0
    out: Path = args.out or default_report_path(args.run, paper=args.format == "paper")
    write_new_file(out, text, force=args.force)
    print(out)
    return 0


def say_which_ks(ks: list[int]) -> None:
    """The paper's list is positional: with other k's than its 10…80, say which they are."""
    from ccapp.engines.c2eval.config import DEFAULT_KS

    if tuple(ks) != DEFAULT_KS:
        listed = ", ".join(f"Corr@{k}" for k in ks)
        print(
            f"ccapp: note: the list is [{listed}, Corr_mean] (not the paper's k = 10…80)",
            file=sys.stderr,
        )


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


def _to_stdout(args: argparse.Namespace) -> bool:
    return args.out is not None and str(args.out) == "-"


def export_samples_table(args: argparse.Namespace) -> int:
    from ccapp.engines.c2eval.samples import export_samples

    out = (
        None if _to_stdout(args) else args.out or default_export_path(args.run, "-samples.parquet")
    )
    with open_store(args) as store:
        done = export_samples(store, args.run, out, force=args.force)
    if done.path is not None:
        print(f"{done.path}: {done.rows} rows ({done.format})")
    return 0


def export_html_report(args: argparse.Namespace) -> int:
    from ccapp.engines.c2eval.html_report import write_html_report

    out = None if _to_stdout(args) else args.out or default_export_path(args.run, ".html")
    with open_store(args) as store:
        written = write_html_report(store, args.run, out, force=args.force)
    if written is not None:
        print(written)
    return 0


def default_export_path(run_id: int, suffix: str) -> Path:
    from ccapp.config import paths

    return paths().reports_dir / f"run-{run_id}{suffix}"
