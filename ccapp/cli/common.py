"""Pieces every command shares: the --db option, opening the store, printing results."""

from __future__ import annotations

import argparse
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
