"""The job forms' fields, generated from the jobs' declarations (ccapp.engines.options).

A form shows the declared label, widget and default of each field that has a label, parses
what is typed as `ccapp JOB` parses its flags, and refuses what the job's `problems()`
refuses, with the same messages; what it launches is the command line of those values.
Fields sharing a declared `row` sit side by side; a screen orders the rows (and puts its own
parts, such as the eval form's judge, between them); rows it does not name come after the
ones it does, so an option added to a job reaches its form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from ccapp.engines.options import Declared, command_line, convert, declared, format_value
from ccapp.engines.options import parse_text as parse_option_text
from ccapp.errors import UserError

Text = str | bool  # what a widget holds: an input's or a select's text, a switch's state


def form_fields(cls: type) -> tuple[Declared, ...]:
    """The fields of a job's config that its form shows: those with a label."""
    return tuple(d for d in declared(cls) if d.option.label)


def default_text(d: Declared) -> Text:
    """What the form shows before anything is typed."""
    if d.kind is bool:
        return bool(d.default)
    if d.option.form_default is not None:
        return d.option.form_default
    return "" if d.default is None or d.default is MISSING else format_value(d.default)


class OptionTexts:
    """A form's values as typed, one per labelled field of `config` (text, or a switch's
    state) plus the screen's own `extra` ones; each defaults as the declaration says."""

    config: ClassVar[type]
    extra: ClassVar[Mapping[str, Text]] = {}

    def __init__(self, **values: Text) -> None:
        known = self.defaults()
        unknown = set(values) - set(known)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        self.__dict__.update(known | values)

    @classmethod
    def defaults(cls) -> dict[str, Text]:
        return {d.name: default_text(d) for d in form_fields(cls.config)} | dict(cls.extra)

    def texts(self) -> dict[str, Text]:
        """The declared fields' texts (the screen's extras left out)."""
        return {d.name: self.__dict__[d.name] for d in form_fields(self.config)}

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields
        raise AttributeError(f"{type(self).__name__} has no field {name}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def read_values(
    cls: type, texts: Mapping[str, Text], fixed: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values the texts give (with `fixed` ones the screen composed itself), and the
    problems by field: what `ccapp JOB` would refuse, worded as it words it."""
    by_name = {d.name: d for d in declared(cls)}
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, text in texts.items():
        d = by_name[name]
        try:
            value = text if d.kind is bool else parse_option_text(d, str(text))
            values[name] = convert(d, value)
        except ValueError as exc:
            problems[name] = str(exc)
        except UserError as exc:
            problems[name] = exc.problem
    values |= dict(fixed or {})
    config = cls(**values)  # a field that did not parse keeps its default here
    for problem in config.problems():
        problems.setdefault(problem.field, problem.text)
    return values, problems


def form_command(job: str, cls: type, values: Mapping[str, Any]) -> list[str]:
    """`ccapp JOB …` for these values."""
    return [job, *command_line(cls, values)]


def option_widget(d: Declared, value: Text, widget_id: str, **kwargs: Any) -> Widget:
    """The declared widget of a field, holding `value`."""
    if d.option.widget == "switch":
        return Switch(bool(value), id=widget_id, **kwargs)
    if d.option.widget == "select":
        labels = dict(d.option.choice_labels)
        order = [v for v, _ in d.option.choice_labels] or list(d.option.choices) or [str(value)]
        return Select(
            [(labels.get(v, v), v) for v in order],
            value=str(value),
            id=widget_id,
            allow_blank=False,
            **kwargs,
        )
    kwargs.setdefault("placeholder", d.option.placeholder)
    return Input(str(value), id=widget_id, **kwargs)


def field_box(
    label: str, widget: Widget, problem_id: str, *, hint: str = "", box_id: str | None = None
) -> ComposeResult:
    """A field: its label, its widget, a hint, and the line its problem shows on."""
    with Vertical(classes="field", id=box_id):
        yield Label(label)
        yield widget
        if hint:
            yield Static(hint, classes="hint", markup=False)
        yield Static("", classes="problem", id=problem_id, markup=False)


def read_widgets(screen: Screen[Any], cls: type, widget_id: Any) -> dict[str, Text]:
    """What each of the form's fields holds now (`widget_id(name)` names its widget)."""
    texts: dict[str, Text] = {}
    for d in form_fields(cls):
        widget = screen.query_one(f"#{widget_id(d.name)}")
        if isinstance(widget, Switch):
            texts[d.name] = widget.value
        elif isinstance(widget, Select):
            texts[d.name] = str(widget.value)
        else:
            assert isinstance(widget, Input)
            texts[d.name] = widget.value
    return texts


def form_rows(cls: type) -> dict[str, list[Declared]]:
    """The form's rows by key (a field's declared row, else its name), in declaration order."""
    rows: dict[str, list[Declared]] = {}
    for d in form_fields(cls):
        rows.setdefault(d.option.row or d.name, []).append(d)
    return rows


def row_order(cls: type, order: Sequence[str], own: Iterable[str] = ()) -> list[str]:
    """The rows in the screen's `order` (which may hold the screen's `own` parts), then the
    rows it does not name, in declaration order: an option added to a job reaches its form."""
    rows = form_rows(cls)
    unknown = [key for key in order if key not in rows and key not in set(own)]
    if unknown:
        raise KeyError(f"{cls.__name__}'s form has no row {', '.join(unknown)}")
    return [*order, *(key for key in rows if key not in order)]


def compose_row(
    fields: Sequence[Declared], field: Callable[[Declared], ComposeResult]
) -> ComposeResult:
    """One row: a single field as is, several side by side."""
    if len(fields) == 1:
        yield from field(fields[0])
        return
    with Horizontal(classes="row"):
        for d in fields:
            yield from field(d)
