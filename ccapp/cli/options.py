"""A job's command-line options, generated from its config's declarations
(ccapp.engines.options): one flag per declared field, with its help, type and choices.

Every generated option defaults to None, so that a command can tell what was given (for
--resume, which keeps the run's settings, and for defaults taken from config.toml).
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING
from typing import Any

from ccapp.engines.options import Declared, convert, declared, format_value, parse_text


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per declared field of `cls`, in --help sections by the fields' groups."""
    sections: dict[str, Any] = {}
    for d in declared(cls):
        group = d.option.group
        if group and group not in sections:
            sections[group] = parser.add_argument_group(group)
        add_option(sections.get(group, parser), d)


def add_option(parser: Any, d: Declared) -> None:
    """The flag of one declared field."""
    kwargs: dict[str, Any] = {"dest": d.name, "default": None, "help": help_text(d)}
    if d.kind is bool:
        # A switch's flag sets the value that is not the default (--all-prompts: False).
        kwargs |= {"action": "store_const", "const": not d.default}
    else:
        kwargs["type"] = _typed(d)
        metavar = d.option.metavar or ("N" if d.kind is int else None)
        if metavar:
            kwargs["metavar"] = metavar
        if d.option.choices and d.option.convert is None:
            kwargs["choices"] = d.option.choices
    parser.add_argument(d.flag, **kwargs)


def help_text(d: Declared) -> str:
    """The declared help, with the default where the help does not say it."""
    text = d.option.help
    default = d.default
    unsaid = default is MISSING or default is None or default is False or default == ""
    if "default" not in text and not unsaid:
        text = f"{text} (default {format_value(default)})"
    return text


def _typed(d: Declared) -> Any:
    """argparse's `type`: the text parsed as the form parses it, with the same messages."""

    def parse(text: str) -> Any:
        try:
            return parse_text(d, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = d.kind.__name__
    return parse


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The declared fields given on the command line, normalized (a bad device or dtype is a
    UserError naming its flag)."""
    values = {}
    for d in declared(cls):
        value = getattr(args, d.name, None)
        if value is not None:
            values[d.name] = convert(d, value)
    return values
