"""What the three job forms (eval, syn, train) share: problems shown under their fields as
the user types, and a launch refused with the first problem named."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Static


def show_problems(screen: Screen[Any], id_prefix: str, problems: dict[str, str]) -> None:
    """Each `.problem` line (id `{id_prefix}{field}`) shows its field's problem, or hides."""
    for line in screen.query(".problem").results(Static):
        key = (line.id or "").removeprefix(id_prefix)
        line.update(problems.get(key, ""))
        line.display = key in problems


def refuse_launch(screen: Screen[Any], problems: dict[str, str]) -> bool:
    """True (and a notice naming the first problem) when the form cannot launch yet."""
    if not problems:
        return False
    first = next(iter(problems))
    screen.notify(
        f"Fix {len(problems)} field(s) first: {first}: {problems[first]}", severity="error"
    )
    return True
