"""Progress events: what a job tells the app, scripts and the terminal, one JSON object a line.

Each event is a frozen dataclass below, declared once: its `TAG` is the line's "event" and its
fields are the line's other keys, so an engine that emits and the app that reads cannot
disagree about a name, and a sink refuses (TypeError) anything that is not declared here.
tests/test_events.py holds this list to the classes.

Schema (EVENTS_VERSION 1). Every line has "event" (its tag) and "run_id" (stamped by the
sink; null before the run exists):

- run_started: `v`, `kind`, `config`, `totals` (requests, cells, continuations, groups, pairs,
  steps, todo: those that apply to the kind)
- model_loading: `phase` (resolve | download | tokenizer | weights | ready), `detail`,
  `done`/`total` (bytes; on the line only while downloading)
- tokens: `deltas`: [[cell_id, path, text], …] — text appended to a streaming continuation,
  coalesced every ~80 ms
- continuation_done: `cell_id`, `path`, `verdict` {judge, label, span, relapse}, `item`, `k`,
  `text`: the heuristic's verdict, known at once (its span is what the live view lights)
- verdict: `cell_id`, `path`, `verdict` {judge, label, span, relapse}: another judge's
  verdict, arriving after the continuation (LLM judges work in the background)
- progress: `done`, `total`, `rate` (units/s), `eta_s`
- metrics: `metrics`, the run's current metrics (Corr@k table, see ccapp.engines.c2eval.metrics)
- log: `level`, `message`
- error: `message` (what went wrong and the fix)
- run_finished: `status`, `metrics`
- group_done: `item`, `request`, `status`, `reason`, `responses` [{rank, role, text, trigger,
  cut_chars}, …]: one C2-Syn group, kept (ok) or rejected with its reason
- train_log: `step`, `epoch`, `loss`, `reward_chosen`, `reward_rejected`, `reward_margin`,
  `reward_accuracy`, `learning_rate`, `samples_per_second`: one trainer log (the store's
  train_log columns)
- demo_stage: `stage`, `state` (started | done), `seconds` (on the line once done)
- demo_finished: `runs`, `before`, `after`, `fluency_before`, `fluency_after`, `seconds`,
  `paired`, `paired_rise`, `fluent`, `fluency_detail`, `model`, `helpfulness`, `rose`,
  `verdict`, `note`: the demo's result (ccapp.engines.demo.loop.DemoResult)

`parse_event` reads a line back: a tag not declared here (a newer job's) becomes an
`UnknownEvent` that readers skip; a declared tag with a missing or mistyped key raises
`EventError`, so a reader never meets half an event.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Protocol, Self, TextIO

EVENTS_VERSION = 1
TOKEN_FLUSH_S = 0.08


class EventError(ValueError):
    """A line that claims a declared event but does not hold it (a key missing or mistyped)."""


# -- the declared events -------------------------------------------------------------------


def _parsed(convert: Callable[[Any], Any]) -> Any:
    """Field metadata: how a field's JSON value becomes its typed value (nested records)."""
    return {"parse": convert}


@dataclass(frozen=True, kw_only=True)
class Record:
    """A typed JSON object: an event, or a record nested in one (GroupResponse). `from_json`
    checks each declared key's type and parses nested records by their field's metadata."""

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        """The event a line holds; keys this version does not declare are ignored."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in obj:
                continue
            value = obj[f.name]
            _check_type(cls, f.name, f.type, value)
            parse = f.metadata.get("parse")
            try:
                values[f.name] = parse(value) if parse is not None and value is not None else value
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                raise EventError(f"{_name(cls)}: `{f.name}` is malformed ({exc!r})") from None
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:  # a required key missing, or values at odds
            raise EventError(f"{_name(cls)}: {exc}") from None

    @classmethod
    def like(cls, obj: Any) -> Self:
        """The record of an object with the same attributes (a judge's Verdict, a stored
        response): one place that copies them, field by field."""
        return cls(**{f.name: getattr(obj, f.name) for f in fields(cls)})


def _name(cls: type) -> str:
    """What messages call a record: an event's tag, else its class name."""
    return getattr(cls, "TAG", "") or cls.__name__


@dataclass(frozen=True, kw_only=True)
class Event(Record):
    """What every event shares: its tag and the run it belongs to.

    A sink stamps `run_id` when it writes the line; engines leave it unset.
    """

    TAG: ClassVar[str] = ""
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()  # keys a line leaves out when null

    run_id: int | None = None

    def wire_fields(self) -> dict[str, Any]:
        """The line's keys besides "event" and "run_id", as JSON values, in declared order."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "run_id" or (value is None and f.name in self.OMIT_IF_NONE):
                continue
            out[f.name] = _plain(value)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"event": self.TAG, "run_id": self.run_id, **self.wire_fields()}

    def to_line(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False)


@dataclass(frozen=True, kw_only=True)
class VerdictInfo(Record):
    """A judge's verdict on one continuation, as events carry it."""

    judge: str
    label: str  # yes | no | unparsed | error
    span: tuple[int, int] | None = None  # where the correction is in the text
    relapse: bool = False

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> VerdictInfo:
        span = obj.get("span")
        return cls(
            judge=str(obj["judge"]),
            label=str(obj["label"]),
            span=(int(span[0]), int(span[1])) if span else None,
            relapse=bool(obj.get("relapse")),
        )


@dataclass(frozen=True, kw_only=True)
class GroupResponse(Record):
    """One of a C2-Syn group's six responses (rank 0 safe … 5 harmful)."""

    rank: int
    role: str
    text: str
    trigger: str | None = None
    cut_chars: int | None = None


def _deltas(value: Any) -> tuple[tuple[int, int, str], ...]:
    return tuple((int(cell), int(path), str(text)) for cell, path, text in value)


def _responses(value: Any) -> tuple[GroupResponse, ...]:
    return tuple(GroupResponse.from_json(r) for r in value)


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    TAG = "run_started"
    v: int = EVENTS_VERSION
    kind: str
    config: dict[str, Any]
    totals: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class ModelLoading(Event):
    TAG = "model_loading"
    phase: str
    detail: str | None = None
    done: int | None = None  # bytes so far, while downloading
    total: int | None = None  # bytes in all, when the Hub says

    def __post_init__(self) -> None:
        if self.phase != "download" and (self.done, self.total) != (None, None):
            raise ValueError("model_loading: done/total are the download's bytes")

    def wire_fields(self) -> dict[str, Any]:
        out = super().wire_fields()
        if self.phase != "download":
            del out["done"], out["total"]
        return out


@dataclass(frozen=True, kw_only=True)
class Tokens(Event):
    TAG = "tokens"
    deltas: tuple[tuple[int, int, str], ...] = field(metadata=_parsed(_deltas))


@dataclass(frozen=True, kw_only=True)
class PathVerdict(Event):
    """What both verdict-carrying events say: a judge's verdict on one path of one cell."""

    cell_id: int
    path: int
    verdict: VerdictInfo = field(metadata=_parsed(VerdictInfo.from_json))


@dataclass(frozen=True, kw_only=True)
class ContinuationDone(PathVerdict):
    TAG = "continuation_done"
    item: int
    k: int
    text: str


@dataclass(frozen=True, kw_only=True)
class VerdictEvent(PathVerdict):
    TAG = "verdict"


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    TAG = "progress"
    done: int
    total: int
    rate: float | None = None
    eta_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class MetricsEvent(Event):
    TAG = "metrics"
    metrics: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    TAG = "log"
    level: str  # info | warning
    message: str


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    TAG = "error"
    message: str


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    TAG = "run_finished"
    status: str  # done | paused | failed
    metrics: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class GroupDone(Event):
    TAG = "group_done"
    item: int
    request: str
    status: str  # ok | rejected
    reason: str | None = None
    responses: tuple[GroupResponse, ...] = field(default=(), metadata=_parsed(_responses))


@dataclass(frozen=True, kw_only=True)
class TrainLog(Event):
    TAG = "train_log"
    step: int
    epoch: float | None = None
    loss: float | None = None
    reward_chosen: float | None = None
    reward_rejected: float | None = None
    reward_margin: float | None = None
    reward_accuracy: float | None = None
    learning_rate: float | None = None
    samples_per_second: float | None = None


@dataclass(frozen=True, kw_only=True)
class DemoStage(Event):
    TAG = "demo_stage"
    OMIT_IF_NONE = frozenset({"seconds"})
    stage: str
    state: str  # started | done
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class DemoFinished(Event):
    TAG = "demo_finished"
    runs: dict[str, int] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    fluency_before: dict[str, Any] = field(default_factory=dict)
    fluency_after: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    paired: dict[str, Any] = field(default_factory=dict)
    paired_rise: bool = False
    fluent: bool = False
    fluency_detail: str = ""
    model: str = "toy"
    helpfulness: dict[str, Any] = field(default_factory=dict)
    rose: bool = False
    verdict: str = ""
    note: str = ""


EVENT_TYPES: tuple[type[Event], ...] = (
    RunStarted,
    ModelLoading,
    Tokens,
    ContinuationDone,
    VerdictEvent,
    Progress,
    MetricsEvent,
    Log,
    ErrorEvent,
    RunFinished,
    GroupDone,
    TrainLog,
    DemoStage,
    DemoFinished,
)
BY_TAG: dict[str, type[Event]] = {cls.TAG: cls for cls in EVENT_TYPES}
_DECLARED = frozenset(EVENT_TYPES)


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """A line with a tag this version does not declare (a newer job's): kept whole, skipped."""

    tag: str
    raw: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)


def declared(event: object) -> Event:
    """The event itself, if its type is declared here; sinks call it on everything emitted."""
    if type(event) not in _DECLARED:
        raise TypeError(
            f"not a declared event: {event!r} (declare it in ccapp.engines.events, or emit "
            "one of EVENT_TYPES)"
        )
    assert isinstance(event, Event)
    return event


def parse_event(obj: Mapping[str, Any]) -> Event:
    """The event a decoded JSON line holds (see the module docstring for unknown tags)."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("event"), str):
        raise EventError('an event is a JSON object with a string "event"')
    run_id = obj.get("run_id")
    if run_id is not None and (not isinstance(run_id, int) or isinstance(run_id, bool)):
        raise EventError(f"{obj['event']}: `run_id` is not an integer")
    cls = BY_TAG.get(obj["event"])
    if cls is None:
        return UnknownEvent(tag=obj["event"], raw=dict(obj), run_id=run_id)
    return cls.from_json(obj)


def parse_line(line: str) -> Event:
    """A JSON line's event; ValueError (JSONDecodeError or EventError) when it holds none."""
    return parse_event(json.loads(line))


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "dict": (dict,),
}


def _check_type(cls: type[Record], name: str, annotation: Any, value: Any) -> None:
    """A scalar or dict field's JSON value has the declared type (int for a float is fine)."""
    parts = [p.strip().split("[")[0] for p in str(annotation).split("|")]
    if value is None:
        if "None" not in parts:
            raise EventError(f"{_name(cls)}: `{name}` is null")
        return
    allowed = [_JSON_TYPES[p] for p in parts if p in _JSON_TYPES]
    if len(allowed) != len([p for p in parts if p != "None"]):
        return  # a nested record or Any: its own parser checks it
    ok = any(isinstance(value, t) for t in allowed)
    if isinstance(value, bool) and "bool" not in parts:
        ok = False  # JSON true is no count
    if not ok:
        raise EventError(f"{_name(cls)}: `{name}` is {type(value).__name__}, not {annotation}")


def _plain(value: Any) -> Any:
    """A field's value as JSON holds it: records become objects, tuples lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# -- sinks ---------------------------------------------------------------------------------


class Sink(Protocol):
    wants_tokens: bool  # False spares the engine decoding every row at every step

    def emit(self, event: Event) -> None: ...

    def tokens(self, deltas: list[tuple[int, int, str]]) -> None: ...

    def close(self) -> None: ...


class NullSink:
    wants_tokens = False

    def emit(self, event: Event) -> None:
        declared(event)  # an undeclared event fails here too, not only where a line is written

    def tokens(self, deltas: list[tuple[int, int, str]]) -> None:
        pass

    def close(self) -> None:
        pass


class JsonLinesSink:
    """Writes events as JSON lines; token deltas are buffered and flushed on a clock."""

    wants_tokens = True

    def __init__(
        self,
        run_id: Callable[[], int | None],
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._run_id = run_id
        self._out = out or sys.stdout
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[tuple[int, int, str]] = []
        self._last_flush = clock()

    def emit(self, event: Event) -> None:
        line = declared(event).to_json()
        with self._lock:
            self._flush_tokens()
            line["run_id"] = self._run_id()
            self._write(line)

    def tokens(self, deltas: list[tuple[int, int, str]]) -> None:
        with self._lock:
            self._pending.extend(deltas)
            if self._clock() - self._last_flush >= TOKEN_FLUSH_S:
                self._flush_tokens()

    def close(self) -> None:
        with self._lock:
            self._flush_tokens()

    def _flush_tokens(self) -> None:
        self._last_flush = self._clock()
        if not self._pending:
            return
        merged: dict[tuple[int, int], str] = {}
        for cell, path, text in self._pending:
            merged[(cell, path)] = merged.get((cell, path), "") + text
        self._pending = []
        deltas = tuple((cell, path, text) for (cell, path), text in merged.items())
        self._write(Tokens(deltas=deltas, run_id=self._run_id()).to_json())

    def _write(self, obj: dict[str, Any]) -> None:
        try:
            self._out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self._out.flush()
        except BrokenPipeError:  # the reader (the app) went away; the job carries on
            pass
