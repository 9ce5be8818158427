"""`ccapp runs [list | show RUN | delete RUN]`: the runs in the store."""

from __future__ import annotations

import argparse
import sys

from ccapp.cli.common import add_db_option, console, open_store, print_json
from ccapp.cli.display import print_result
from ccapp.engines.run_summary import settings_line
from ccapp.errors import UserError
from ccapp.store import Run, RunKind, Store, runs
from ccapp.store import evals as rows_store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("runs", help="list, show or delete runs")
    add_db_option(parser)
    parser.set_defaults(handler=run_list, kind=None, limit=None, json=False)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="all runs, newest first (the default)")
    add_db_option(listing)
    listing.add_argument("--kind", choices=[k.value for k in RunKind])
    listing.add_argument("--limit", type=run_id_arg, metavar="N", help="the newest N runs")
    listing.add_argument("--json", action="store_true", help="print the runs as JSON lines")
    listing.set_defaults(handler=run_list)
    show = actions.add_parser("show", help="a run's settings, status and metrics")
    add_db_option(show)
    show.add_argument("run", metavar="RUN", type=run_id_arg)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=run_show)
    delete = actions.add_parser("delete", help="delete a run and everything it produced")
    add_db_option(delete)
    delete.add_argument("run", metavar="RUN", type=run_id_arg)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=run_delete)


def run_id_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a run id (a number)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a run id (a positive number)")
    return value


def run_list(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        kind = RunKind(args.kind) if args.kind else None
        found = runs.list_runs(store, kind=kind, limit=args.limit)
        if args.json:
            for run in found:
                print_json(_summary(run))
            return 0
        if not found:
            console().print(f"No runs yet in {store.path}.")
            return 0
        header = ("id", "kind", "status", "model", "judge", "Corr_mean", "created")
        if not sys.stdout.isatty():  # a pipe or a file: whole values, tab-separated, no table
            for row in (header, *([*run.listed(), run.created_at] for run in found)):
                print("\t".join(row))
            return 0
        from rich.table import Table

        out = console()
        rows = [[*run.listed(), run.created_at] for run in found]
        narrow = needed_width(rows, header) > out.width
        if narrow:  # minutes are enough to tell runs apart; --json and a pipe give it whole
            at = header.index("created")
            for row in rows:
                row[at] = row[at][:16].replace("T", " ")
        widths = fit_columns(rows, header, out.width - (4 if narrow else 0))
        table = Table(show_edge=not narrow, pad_edge=not narrow)
        for name, width in zip(header, widths):
            table.add_column(name, min_width=width, max_width=width, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        out.print(table)
    return 0


# what a narrow terminal shortens, most first; the id, kind, status, score and timestamp never
SHRINKS = {"model": 10, "judge": 9}


def needed_width(rows: list[list[str]], header: tuple[str, ...]) -> int:
    """How wide the table is with every cell whole."""
    widths = [max(len(r[i]) for r in [list(header), *rows]) for i in range(len(header))]
    return sum(widths) + 3 * len(header) + 1  # "│ " and " " around each cell


def fit_columns(rows: list[list[str]], header: tuple[str, ...], width: int) -> list[int]:
    """Each column's width for a table of `width` columns: the model (from its start:
    "…/llama-3-8b-dpo", a path's end names it) and the judge are shortened, the wider first,
    down to SHRINKS' widths; the rows' model cells are cut to fit."""
    widths = [max(len(r[i]) for r in [list(header), *rows]) for i in range(len(header))]
    over = needed_width(rows, header) - width
    shrinking = {header.index(name): least for name, least in SHRINKS.items()}
    while over > 0:  # one column at a time from the widest, so both stay readable
        room = {at: widths[at] - least for at, least in shrinking.items() if widths[at] > least}
        if not room:
            break
        widest = max(room, key=lambda at: widths[at])
        widths[widest] -= 1
        over -= 1
    at = header.index("model")
    for row in rows:
        if len(row[at]) > widths[at]:
            row[at] = "…" + row[at][len(row[at]) - widths[at] + 1 :]
    return widths


def run_show(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        run = runs.get_run(store, args.run)
        result = run_result(store, run)
    if args.json:
        print_json(_summary(run) | {"config": run.config, "error": run.error})
        return 0
    out = console()
    out.print(f"[bold]run {run.id}[/] · {run.kind.value} · {run.status.value}")
    for label, value in [
        ("model", run.model),
        ("data", run.data),
        ("judge", run.judge),
        ("created", run.created_at),
        ("finished", run.finished_at or "–"),
        ("parent run", run.parent_id or "–"),
        ("fingerprint", run.fingerprint),
        ("ccapp", run.ccapp_version),
    ]:
        out.print(f"  {label:<12} {value}", markup=False)
    if run.error:
        out.print(f"  {'error':<12} {run.error}", markup=False)
    out.print(f"  {'settings':<12} {settings_line(run)}", markup=False)
    if result is not None:  # the result as `ccapp eval|syn|train` ends with it
        print_result(out, result)
    out.print("  (--json: the whole config and metrics)", style="dim")
    return 0


def run_result(store: Store, run: Run) -> Run | None:
    """The run with the result to show: an eval run's Corr@k from its verdicts so far (its
    own judge's; a paused run's too), another run's stored metrics (None: nothing yet)."""
    if run.kind is RunKind.EVAL and run.judge in rows_store.judges_of(store, run.id):
        from dataclasses import replace

        from ccapp.engines.c2eval.report import run_metrics

        return replace(run, metrics=run_metrics(store, run, run.judge))
    return run if run.metrics else None


def run_delete(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        run = runs.get_run(store, args.run)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UserError(
                    f"deleting run {run.id} needs confirmation",
                    fix="pass --yes to delete without asking",
                )
            answer = input(f"{runs.deletion_question(store, run)} [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                return 0
        runs.delete_run(store, run.id)
    print(f"Deleted run {run.id}.")
    return 0


def _summary(run: Run) -> dict[str, object]:
    return {
        "run_id": run.id,
        "kind": run.kind.value,
        "status": run.status.value,
        "model": run.model,
        "data": run.data,
        "judge": run.judge,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "parent_id": run.parent_id,
        "metrics": run.metrics,
    }
