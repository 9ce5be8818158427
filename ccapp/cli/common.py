"""Pieces every command shares: the --db option, opening the store, printing results."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any

from ccapp.config import resolve_db
from ccapp.store import Store


def add_judge_max_tokens_option(parser: argparse.ArgumentParser) -> None:
    """`--judge-max-tokens`, shared by eval and judge: the budget of an API judge's answer,
    as EvalConfig declares it."""
    from ccapp.cli.options import add_option
    from ccapp.engines.c2eval.config import EvalConfig
    from ccapp.engines.options import declared_field

    add_option(parser, declared_field(EvalConfig, "judge_max_tokens"))


def add_command(subparsers: argparse._SubParsersAction, name: str, doc: str | None) -> Any:
    """A command with --db, its help and description read from `doc` (a docstring: the first
    paragraph is the help line of `ccapp --help`, the rest the command's description)."""
    summary, _, rest = inspect.cleandoc(doc or "").partition("\n\n")
    p = subparsers.add_parser(
        name, help=" ".join(summary.split()), description=" ".join(rest.split()) or None
    )
    add_db_option(p)
    return p


def add_db_option(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    # The sub-command copy defaults to SUPPRESS so `ccapp --db X runs list` is not reset.
    parser.add_argument(
        "--db",
        metavar="FILE",
        default=None if top_level else argparse.SUPPRESS,
        help="the SQLite store to use (default: [store] path in config.toml, else "
        "ccapp.db in the data folder; CCAPP_HOME moves that folder)",
    )


def open_store(args: argparse.Namespace) -> Store:
    return Store.open(resolve_db(getattr(args, "db", None)))


def print_json(obj: Any) -> None:
    """One JSON object on one line: the last line of stdout is what scripts read."""
    sys.stdout.write(json.dumps(obj, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False)
