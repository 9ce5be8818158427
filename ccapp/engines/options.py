"""Options declared once per job: each field of a job's config dataclass carries its flag,
help, form label, limits and whether it decides the run's results.

The command line (ccapp.cli.options), the forms (ccapp.screens.option_form), the resume
check and Run detail are all read off these declarations, so that a setting cannot be
checked one way on the command line and another in the form, or be stored and never be
offered. The way trl's dataclass fields become its command line.

Plain data: no Textual, no argparse, no torch.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import sys
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import MISSING, dataclass
from typing import Any, TypeVar

from ccapp.errors import UserError

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # it only tells type checkers how `job_config` classes are built

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorated: decorated


T = TypeVar("T")
WIDGETS = ("input", "select", "switch", "path")
_KEY = "ccapp.option"


@dataclass(frozen=True)
class Option:
    """What a config field is to the command line, the form, the resume check and Run detail."""

    help: str = ""
    flag: str = ""  # "" : --the-field-name
    metavar: str | None = None  # None: N for a whole number, else argparse's own
    label: str = ""  # "" : not in the form
    widget: str = "input"  # input | select | switch | path
    placeholder: str = ""
    form_default: str | None = None  # the form's text where the field has no default
    row: str = ""  # the form's row: fields of one row sit side by side ("": a row of its own)
    choices: tuple[str, ...] = ()
    choice_labels: tuple[tuple[str, str], ...] = ()  # (value, what the form's select shows)
    minimum: float | None = None  # inclusive bounds; for a tuple field, of each value
    above: float | None = None  # exclusive bounds
    maximum: float | None = None
    below: float | None = None
    fix: str | None = None  # what to do about a refused value (default: from the bounds)
    # Normalizes a given value (e.g. "CUDA" -> "cuda:0"), raising UserError naming the flag.
    convert: Callable[[Any], Any] | None = None
    decides_results: bool = True  # resuming a run with another value is refused
    shown: bool | str = False  # in Run detail's settings line (a str: that stored key instead)
    # A line under the form's field that follows the typed text (e.g. where data comes from
    # and whether that needs the network); it reads no file and touches no network.
    note: Callable[[str], str] | None = None
    # Why a given text cannot be used (None: it can), found without loading anything: the
    # form shows it as the user types, the command line refuses it (with `fix`) before any
    # work, so a mistyped model is said before the data is downloaded.
    check: Callable[[str], str | None] | None = None
    group: str = ""  # the command line's --help section


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    default_factory: Any = MISSING,
    kw_only: bool = True,
    **declared: Any,
) -> Any:
    """A field of a `job_config` class with its declaration (the keywords of `Option`):
    `option(8, "parallel server requests", minimum=1)`.

    Fields are keyword-only unless `kw_only=False` (a job's positional model and data), so
    that a shared base such as BackendOptions can come first in a config.
    """
    meta = Option(help=help, **declared)
    if meta.widget not in WIDGETS:
        raise ValueError(f"widget {meta.widget!r} is not one of {WIDGETS}")
    return dataclasses.field(
        default=default,
        default_factory=default_factory,
        kw_only=kw_only,
        metadata={_KEY: meta},
    )


def section(group: str) -> Callable[..., Any]:
    """`option` for the fields of one --help section (and form group): a config declares
    `loading = section(LOADING)` once and then `device: str = loading("auto", "…")`."""
    return functools.partial(option, group=group)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(option,))
def job_config(cls: type[T]) -> type[T]:
    """A job's config: a frozen dataclass whose fields are all declared with `option()`,
    keyword-only but for those declared `kw_only=False`."""
    return dataclass(frozen=True, kw_only=True)(cls)


@dataclass(frozen=True)
class Declared:
    """One declared field of a config class, with its type resolved."""

    name: str
    option: Option
    kind: type  # int, float, str, bool, or tuple (of ints)
    optional: bool  # None is a value (e.g. "the model's own setting")
    default: Any  # MISSING when the field has none

    @property
    def flag(self) -> str:
        """Its command-line flag; messages name the field by it."""
        return self.option.flag or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Problem:
    """A refused value: the CLI raises it as a UserError naming the flag, the form shows
    `text` under the field."""

    field: str
    message: str
    fix: str | None = None
    # Found by the field's own check (Option.check) as the text is typed: the form shows
    # the reason alone, beside the field's note; the command line adds the fix.
    typed: bool = False

    @property
    def text(self) -> str:
        """What the form shows under the field."""
        return self.message if self.typed else UserError(self.message, fix=self.fix).message


def declared(cls: type) -> tuple[Declared, ...]:
    """The declared fields of a config class: its own first, then those of its bases (a job's
    settings before the shared loading options), each group in declaration order."""
    if cls not in _DECLARED:  # a form reads them on every key press
        _DECLARED[cls] = _read_declarations(cls)
    return _DECLARED[cls]


_DECLARED: dict[type, tuple[Declared, ...]] = {}


def _read_declarations(cls: type) -> tuple[Declared, ...]:
    hints = typing.get_type_hints(cls)
    own = list(inspect.get_annotations(cls))
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    order = [n for n in own if n in by_name] + [n for n in by_name if n not in own]
    result = []
    for name in order:
        f = by_name[name]
        meta = f.metadata.get(_KEY)
        if meta is None:
            raise TypeError(f"{cls.__name__}.{name} is not declared with option()")
        kind, optional = value_kind(hints[name])
        default = f.default if f.default_factory is MISSING else f.default_factory()
        result.append(Declared(name, meta, kind, optional, default))
    return tuple(result)


def declared_field(cls: type, name: str) -> Declared:
    for d in declared(cls):
        if d.name == name:
            return d
    raise KeyError(f"{cls.__name__} declares no {name}")


def value_kind(hint: Any) -> tuple[type, bool]:
    """A field's value type (int, float, str, bool or tuple) and whether None is allowed."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        return tuple, optional
    if hint not in (int, float, str, bool):
        raise TypeError(f"an option is int, float, str, bool or tuple[int, ...], not {hint}")
    return hint, optional


# --- values as text (the command line and the forms speak text) ---------------------------


def format_value(value: Any) -> str:
    """A value as it is typed: 10,20 for a tuple, 0.8 and 1 (not 1.0) for floats."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(format_value, value))
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def parse_text(d: Declared, text: str) -> Any:
    """A typed text as the field's value; ValueError says why not. Empty is None where the
    field takes None."""
    stripped = text.strip()
    if d.kind is bool:
        raise TypeError("a switch has no text")
    if not stripped and d.optional:
        return None
    if d.kind is str:
        return stripped
    if d.kind is int:
        try:
            return int(stripped)
        except ValueError:
            raise ValueError(f"'{text}' is not a whole number") from None
    if d.kind is float:
        try:
            return float(stripped)
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
    try:
        return tuple(int(part) for part in stripped.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"'{text}' is not a list of numbers: give positive whole numbers separated by "
            "commas, e.g. 10,20,40"
        ) from None


def convert(d: Declared, value: Any) -> Any:
    """The declared normalization of a given value (raises UserError)."""
    if d.option.convert is None or value is None:
        return value
    return d.option.convert(value)


# --- checks ---------------------------------------------------------------------------------


def default_fix(o: Option) -> str | None:
    """What to do, said from the declared limits, where the declaration says nothing else."""
    if o.fix:
        return o.fix
    if o.choices:
        *rest, last = o.choices
        return f"use {', '.join(rest)} or {last}" if rest else f"use {last}"
    low = _bound("[", o.minimum) or _bound("(", o.above)
    high = _bound("]", o.maximum) or _bound(")", o.below)
    if low and high:
        return f"use a value in {low}, {high}"
    if o.minimum is not None:
        return "give 0 or more" if o.minimum == 0 else f"give at least {o.minimum:g}"
    if o.above is not None:
        return f"give a number above {o.above:g}"
    if o.maximum is not None:
        return f"give at most {o.maximum:g}"
    if o.below is not None:
        return f"give a number below {o.below:g}"
    return None


def _bound(bracket: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"{bracket}{value:g}" if bracket in "[(" else f"{value:g}{bracket}"


def _bad_number(o: Option, value: float) -> bool:
    if isinstance(value, float) and not math.isfinite(value):  # NaN passes every `<` test
        return True
    return (
        (o.minimum is not None and value < o.minimum)
        or (o.above is not None and value <= o.above)
        or (o.maximum is not None and value > o.maximum)
        or (o.below is not None and value >= o.below)
    )


def field_problems(config: Any) -> list[Problem]:
    """What the declarations refuse in a config: values out of their limits or choices."""
    problems = []
    for d in declared(type(config)):
        value = getattr(config, d.name)
        if value is None and d.optional:
            continue
        o = d.option
        if d.kind is tuple:
            bad = not value or any(_bad_number(o, v) for v in value)
        elif d.kind in (int, float):
            bad = _bad_number(o, value)
        elif d.kind is str and o.choices and o.convert is None:
            bad = value not in o.choices
        else:
            bad = False
        if bad:
            problems.append(Problem(d.name, f"invalid value {format_shown(value)}", default_fix(o)))
        elif o.check is not None and (reason := o.check(value)) is not None:
            problems.append(Problem(d.name, reason, default_fix(o), typed=True))
    return problems


def format_shown(value: Any) -> str:
    return repr(format_value(value)) if isinstance(value, (tuple, list)) else repr(value)


def raise_first(cls: type, problems: Sequence[Problem]) -> None:
    """The first problem as the UserError the command line reports (exit code 2)."""
    if problems:
        p = problems[0]
        where = next((d.flag for d in declared(cls) if d.name == p.field), p.field)
        raise UserError(p.message, where=where, fix=p.fix)


class Checked:
    """The checks of a job's config, written once: `problems()` are what its declarations
    refuse and then what its own `job_problems()` find; `check()` raises the first."""

    def problems(self) -> list[Problem]:
        """Impossible settings, found before anything is loaded."""
        return field_problems(self) + self.job_problems()

    def job_problems(self) -> list[Problem]:
        """What the job refuses beyond each field's declaration (settings together)."""
        return []

    def check(self, given: Collection[str] | None = None) -> None:
        """Reject impossible settings before anything is loaded (exit code 2).

        On resume, `given` names the settings given now: the declared text checks
        (`Option.check`) look at those only, since the stored model and data were checked
        when the run started, and a resumed eval no longer reads its data file."""
        problems = self.problems()
        if given is not None:
            checked = {d.name for d in declared(type(self)) if d.option.check is not None}
            problems = [p for p in problems if p.field in given or p.field not in checked]
        raise_first(type(self), problems)


# --- what the declarations say about runs ---------------------------------------------------


def result_settings(cls: type) -> tuple[str, ...]:
    """The settings that decide what a run produces (its identity; fixed on resume)."""
    return tuple(d.name for d in declared(cls) if d.option.decides_results)


def shown_settings(cls: type) -> tuple[str, ...]:
    """The stored keys Run detail's settings line shows, in declaration order."""
    return tuple(
        d.option.shown if isinstance(d.option.shown, str) else d.name
        for d in declared(cls)
        if d.option.shown
    )


def from_stored(cls: type, stored: Mapping[str, Any]) -> Any:
    """The config a stored run was made with (what JSON made of it: lists back to tuples);
    keys of settings this ccapp no longer has are left out."""
    values = {}
    for d in declared(cls):
        if d.name in stored:
            value = stored[d.name]
            values[d.name] = tuple(value) if d.kind is tuple and value is not None else value
    return cls(**values)


def refuse_other_settings(
    run_id: int, config: Any, overrides: Mapping[str, Any], *, fix: str
) -> None:
    """Resuming keeps a run's settings: refuse given values of result-deciding settings that
    differ from the stored run's, naming each flag with both values."""
    differing = [
        f"{d.flag} (run: {format_value(getattr(config, d.name))}, "
        f"given: {format_value(overrides[d.name])})"
        for d in declared(type(config))
        if d.name in overrides
        and d.option.decides_results
        and _as_compared(overrides[d.name]) != _as_compared(getattr(config, d.name))
    ]
    if differing:
        raise UserError(
            f"run {run_id} was started with other settings: {'; '.join(differing)}", fix=fix
        )


def _as_compared(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def keep_given(config: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Of the values given on resume, those that may change (they do not decide results)."""
    decides = set(result_settings(type(config)))
    return {k: v for k, v in overrides.items() if k not in decides}


def command_line(cls: type, values: Mapping[str, Any]) -> list[str]:
    """The flags that give these values, in declaration order (None: left out; a switch:
    its flag when the value is not the default)."""
    argv: list[str] = []
    for d in declared(cls):
        value = values.get(d.name)
        if value is None:
            continue
        if d.kind is bool:
            if value != d.default:
                argv.append(d.flag)
            continue
        argv += [d.flag, format_value(value)]
    return argv
