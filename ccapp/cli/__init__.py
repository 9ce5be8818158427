"""The `ccapp` command line: the contract shared by users, scripts, the app and the tests.

Only argparse and the small command modules are imported here; each command imports its
engine inside its handler, so `ccapp --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ccapp import __version__
from ccapp.cli import (
    agreement_cmd,
    data_cmd,
    demo_cmd,
    devices_cmd,
    eval_cmd,
    export_cmd,
    judge_cmd,
    model_cmd,
    plot_cmd,
    runs_cmd,
    syn_cmd,
    table_cmd,
    train_cmd,
)
from ccapp.cli.common import add_db_option
from ccapp.errors import UserError

COMMANDS = [
    eval_cmd,
    judge_cmd,
    agreement_cmd,
    syn_cmd,
    train_cmd,
    runs_cmd,
    export_cmd,
    table_cmd,
    plot_cmd,
    devices_cmd,
    data_cmd,
    model_cmd,
    demo_cmd,
]


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors read like every other error: one line, the fix, exit 2.

    argparse's default prints the whole usage block first (a dozen lines for `eval`), which
    buries the one line that says what is wrong. Sub-command parsers inherit this class.
    """

    def error(self, message: str) -> NoReturn:
        # "ccapp: error: …" as every other error says it; the fix names this command's help.
        self.exit(2, f"ccapp: error: {message.rstrip('.')}. Fix: see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ccapp",
        description="Measure and improve an LLM's course-correction. Without a command, "
        "opens the terminal app.",
        epilog="Exit codes: 0 done, 1 run failed, 2 usage or input error, 130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"ccapp {__version__}")
    add_db_option(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from ccapp.app import run_app

            return run_app(db=args.db)
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"ccapp: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ccapp: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ccapp runs list | head`
        return 0
