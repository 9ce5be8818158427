"""What the job forms (eval, syn, train, demo) share: problems shown under their fields as
the user types, a launch refused with the first problem named, and a job's error worded in
the form's terms (the field's label, not the CLI flag the message was written for)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Label, Static

from ccapp.engines.options import declared

# A user error's `where` as the CLI prints it: "--model: …" (ccapp.errors.UserError).
FLAG_AT_START = re.compile(r"^(--[a-z0-9][a-z0-9-]*):\s*")
# A flag inside the text, with its metavar ("--data FILE"), and a command line to type.
FLAG_IN_TEXT = re.compile(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)(?: [A-Z][A-Z_]*\b)?")
COMMAND = re.compile(r"\bccapp [a-z]+(?: [^\s;,)]+)*")


def short_label(label: str) -> str:
    """A field's label as a name: "Pairs: a syn run id or …" → "Pairs", "Output folder
    (optional)" → "Output folder"."""
    return label.split(":")[0].split(" (")[0].strip()


def flag_labels(cls: type) -> dict[str, str]:
    """The form's name of each labelled field of a job's config, by its CLI flag."""
    return {d.flag: short_label(d.option.label) for d in declared(cls) if d.option.label}


def name_fields(text: str, cls: type | None) -> str:
    """A job's error in the form's words: its leading flag (`--model: …`) named as the form
    names the field (`Model: …`), and a flag the fix mentions ("pass it with --data FILE")
    as that field ("pass it with the Data field"). A command line to type (`ccapp eval
    --resume 3`) keeps its flags, and a flag no form field has is left as it is."""
    if cls is None:
        return text
    labels = flag_labels(cls)
    match = FLAG_AT_START.match(text)
    if match is not None and match.group(1) in labels:
        text = f"{labels[match.group(1)]}: {text[match.end() :]}"

    def field(found: re.Match[str]) -> str:
        label = labels.get(found.group(1))
        return f"the {label} field" if label else found.group(0)

    commands = list(COMMAND.finditer(text))
    pieces, at = [], 0
    for command in commands:  # the flags between the command lines are the user's fields
        pieces += [FLAG_IN_TEXT.sub(field, text[at : command.start()]), command.group(0)]
        at = command.end()
    return "".join([*pieces, FLAG_IN_TEXT.sub(field, text[at:])])


def show_problems(screen: Screen[Any], id_prefix: str, problems: dict[str, str]) -> None:
    """Each `.problem` line (id `{id_prefix}{field}`) shows its field's problem, or hides."""
    for line in screen.query(".problem").results(Static):
        key = (line.id or "").removeprefix(id_prefix)
        line.update(problems.get(key, ""))
        line.display = key in problems


def field_label(screen: Screen[Any], box_id: str, fallback: str) -> str:
    """The label shown in a field's box (`#box_id`), as a name; `fallback` without one."""
    try:
        label = screen.query_one(f"#{box_id}").query_one(Label)
    except NoMatches:
        return fallback
    return short_label(str(label.render())) or fallback


def refuse_launch(
    screen: Screen[Any], problems: Mapping[str, str], labels: Mapping[str, str] | None = None
) -> bool:
    """True (and a notice naming the first problem's field by its label) when the form
    cannot launch yet."""
    if not problems:
        return False
    first = next(iter(problems))
    name = (labels or {}).get(first, first)
    screen.notify(
        f"Fix {len(problems)} field(s) first: {name}: {problems[first]}", severity="error"
    )
    return True
