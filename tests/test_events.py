"""The event protocol between jobs and their readers: declared once, the same on the wire.

Every emit site must send a declared event, every declared event must survive a JSON line
both ways, the lines must keep the keys scripts and older apps read, and the schema in
ccapp.engines.events' docstring must say exactly what the classes declare.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import re
from pathlib import Path

import pytest

from ccapp.cli.display import TerminalSink
from ccapp.engines import events as ev

ROOT = Path(__file__).resolve().parent.parent

VERDICT = ev.VerdictInfo(judge="heuristic", label="yes", span=(3, 17), relapse=True)

# One filled-in instance of every declared type (every field away from its default).
SAMPLES: list[ev.Event] = [
    ev.RunStarted(
        v=ev.EVENTS_VERSION,
        kind="eval",
        config={"model": "tiny", "ks": [10, 20], "judge": "heuristic"},
        totals={"requests": 2, "cells": 4, "continuations": 8, "todo": 6},
    ),
    ev.ModelLoading(phase="download", detail="org/model", done=1024, total=4096),
    ev.Tokens(deltas=((1, 0, " the pins"), (2, 1, "é ✓"))),
    ev.ContinuationDone(cell_id=4, item=1, k=20, path=1, text=" However, no.", verdict=VERDICT),
    ev.VerdictEvent(
        cell_id=4, path=1, verdict=ev.VerdictInfo(judge="openai:gpt-4o", label="unparsed")
    ),
    ev.Progress(done=3, total=8, rate=1.5, eta_s=3.3),
    ev.MetricsEvent(metrics={"corr": {"10": 0.5}, "ci95": {"10": [0.0, 1.0]}, "n": {"10": 2}}),
    ev.Log(level="warning", message="[bold]not markup[/]"),
    ev.ErrorEvent(message="cannot open the store. Fix: check its path"),
    ev.RunFinished(status="done", metrics={"corr_mean": 0.25}),
    ev.GroupDone(
        item=2,
        request="How?",
        status="rejected",
        reason="syn2 does not correct",
        responses=(
            ev.GroupResponse(rank=0, role="safe", text="No."),
            ev.GroupResponse(
                rank=1, role="syn1", text="Sure. However, no.", trigger="However, no.", cut_chars=6
            ),
        ),
    ),
    ev.TrainLog(
        step=3,
        epoch=0.5,
        loss=0.69,
        reward_chosen=0.1,
        reward_rejected=-0.1,
        reward_margin=0.2,
        reward_accuracy=0.75,
        learning_rate=1e-4,
        samples_per_second=12.0,
    ),
    ev.DemoStage(stage="eval before", state="done", seconds=2.5),
    ev.DemoFinished(
        runs={"before": 1, "after": 4},
        before={"corr_mean": 0.1},
        after={"corr_mean": 0.3},
        fluency_before={"degenerate_share": 0.05},
        fluency_after={"degenerate_share": 0.06},
        seconds={"model": 1.0},
        paired={"paired": True, "requests": 8},
        paired_rise=True,
        fluent=True,
        fluency_detail="held",
        model="tiny",
        helpfulness={"before": 0.1, "after": 0.1},
        rose=True,
        verdict="Course-correction rose",
        note="a toy model",
    ),
]


def written(*events: ev.Event, run_id: int | None = 7) -> list[dict[str, object]]:
    """What a job prints for these events, read back as JSON objects."""
    out = io.StringIO()
    sink = ev.JsonLinesSink(lambda: run_id, out=out)
    for event in events:
        sink.emit(event)
    sink.close()
    return [json.loads(line) for line in out.getvalue().splitlines()]


# -- only declared events are emitted -----------------------------------------------------


def test_every_declared_type_has_a_sample_here() -> None:
    assert [type(s) for s in SAMPLES] == list(ev.EVENT_TYPES)
    assert len(ev.BY_TAG) == len(ev.EVENT_TYPES)  # no two types share a tag


def emit_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in sorted((ROOT / "ccapp").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
            ):
                calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return calls


def test_every_emit_call_in_ccapp_builds_a_declared_event() -> None:
    declared = {cls.__name__ for cls in ev.EVENT_TYPES}
    calls = emit_calls()
    assert len(calls) > 40  # the scan sees the engines' and the CLI's emit sites
    for where, call in calls:
        assert not call.keywords and len(call.args) == 1, f"{where}: emit(event) takes one event"
        (arg,) = call.args
        assert isinstance(arg, ast.Call), f"{where}: emit an event built in place"
        name = arg.func.attr if isinstance(arg.func, ast.Attribute) else getattr(arg.func, "id", "")
        assert name in declared, f"{where}: {name} is not a declared event"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Undeclared(ev.Event):
    TAG = "undeclared"
    x: int = 1


@pytest.mark.parametrize(
    "sink", [ev.NullSink(), ev.JsonLinesSink(lambda: 1, out=io.StringIO()), TerminalSink()]
)
@pytest.mark.parametrize(
    "wrong",
    [
        "progress",
        {"event": "progress", "done": 1, "total": 2},
        Undeclared(),
        ev.UnknownEvent(tag="x"),
    ],
)
def test_sinks_refuse_what_is_not_a_declared_event(sink: ev.Sink, wrong: object) -> None:
    with pytest.raises(TypeError, match="not a declared event"):
        sink.emit(wrong)  # type: ignore[arg-type]


# -- both ways over the wire --------------------------------------------------------------


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TAG)
def test_every_declared_event_survives_a_json_line(event: ev.Event) -> None:
    (line,) = written(event)
    assert line["event"] == event.TAG and line["run_id"] == 7
    assert ev.parse_event(line) == dataclasses.replace(event, run_id=7)
    assert ev.parse_line(dataclasses.replace(event, run_id=7).to_line()) == dataclasses.replace(
        event, run_id=7
    )


def test_lines_keep_their_keys_and_values() -> None:
    lines = written(
        ev.ModelLoading(phase="weights", detail="/models/tiny"),
        ev.ModelLoading(phase="download", detail="org/m", done=0),
        SAMPLES[3],
        ev.DemoStage(stage="syn", state="started"),
        ev.RunFinished(status="paused"),
        run_id=None,
    )
    assert lines == [
        {"event": "model_loading", "run_id": None, "phase": "weights", "detail": "/models/tiny"},
        {
            "event": "model_loading",
            "run_id": None,
            "phase": "download",
            "detail": "org/m",
            "done": 0,
            "total": None,
        },
        {
            "event": "continuation_done",
            "run_id": None,
            "cell_id": 4,
            "item": 1,
            "k": 20,
            "path": 1,
            "text": " However, no.",
            "verdict": {"judge": "heuristic", "label": "yes", "span": [3, 17], "relapse": True},
        },
        {"event": "demo_stage", "run_id": None, "stage": "syn", "state": "started"},
        {"event": "run_finished", "run_id": None, "status": "paused", "metrics": None},
    ]
    assert list(lines[2]) == ["event", "run_id", "cell_id", "path", "verdict", "item", "k", "text"]


def test_token_deltas_are_merged_into_one_tokens_line_before_the_next_event() -> None:
    out = io.StringIO()
    sink = ev.JsonLinesSink(lambda: 3, out=out, clock=lambda: 0.0)  # the clock never flushes
    sink.tokens([(1, 0, "a"), (2, 1, "x")])
    sink.tokens([(1, 0, "b")])
    sink.emit(ev.Progress(done=1, total=2, rate=0.5, eta_s=2.0))
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"event": "tokens", "run_id": 3, "deltas": [[1, 0, "ab"], [2, 1, "x"]]},
        {"event": "progress", "run_id": 3, "done": 1, "total": 2, "rate": 0.5, "eta_s": 2.0},
    ]


def test_the_group_done_line_holds_each_response_whole() -> None:
    (line,) = written(SAMPLES[10])
    assert line["responses"] == [
        {"rank": 0, "role": "safe", "text": "No.", "trigger": None, "cut_chars": None},
        {
            "rank": 1,
            "role": "syn1",
            "text": "Sure. However, no.",
            "trigger": "However, no.",
            "cut_chars": 6,
        },
    ]


def test_a_newer_jobs_event_is_kept_aside_and_a_broken_one_refused() -> None:
    newer = {"event": "judge_cost", "run_id": 2, "usd": 0.1}
    assert ev.parse_event(newer) == ev.UnknownEvent(tag="judge_cost", raw=newer, run_id=2)
    # a newer job may add keys to a known event: this version reads what it declares
    assert ev.parse_event({"event": "log", "level": "info", "message": "m", "extra": 1}) == ev.Log(
        level="info", message="m"
    )
    for broken in (
        {"event": "progress", "total": 2},  # a key missing
        {"event": "progress", "done": "1", "total": 2},  # a key of the wrong type
        {"event": "progress", "done": True, "total": 2},
        {"event": "tokens", "deltas": [[1, 0]]},
        {"event": "verdict", "cell_id": 1, "path": 0, "verdict": None},
        {"event": "log", "run_id": "7", "level": "info", "message": "m"},
        {"run_id": 1},
    ):
        with pytest.raises(ev.EventError):
            ev.parse_event(broken)
    with pytest.raises(ValueError):
        ev.parse_line("{not json")


def test_download_bytes_belong_to_the_download_phase() -> None:
    with pytest.raises(ValueError, match="download"):
        ev.ModelLoading(phase="weights", done=10)


# -- the declarations match what they describe ---------------------------------------------


def test_train_log_carries_the_store_columns() -> None:
    from ccapp.store import train as train_store

    names = [f.name for f in dataclasses.fields(ev.TrainLog) if f.name != "run_id"]
    assert names == ["step", "epoch", *train_store.FIELDS]


def test_demo_finished_carries_the_demo_result_whole() -> None:
    from ccapp.engines.demo.loop import DemoResult

    result = DemoResult.judged().as_dict()
    names = [f.name for f in dataclasses.fields(ev.DemoFinished) if f.name != "run_id"]
    assert names == list(result)
    (line,) = written(ev.DemoFinished(**result), run_id=None)
    assert line == {"event": "demo_finished", "run_id": None, **json.loads(json.dumps(result))}


def docstring_schema() -> dict[str, list[str]]:
    """tag → the backquoted keys of its bullet in ccapp.engines.events' docstring."""
    doc = ev.__doc__ or ""
    bullets = re.findall(r"^- (\w+): (.*(?:\n  .*)*)", doc, flags=re.MULTILINE)
    return {tag: re.findall(r"`(\w+)`", text) for tag, text in bullets}


def test_the_docstring_schema_lists_every_declared_event_with_its_keys() -> None:
    schema = docstring_schema()
    assert list(schema) == [cls.TAG for cls in ev.EVENT_TYPES]
    for cls in ev.EVENT_TYPES:
        keys = [f.name for f in dataclasses.fields(cls) if f.name != "run_id"]
        assert schema[cls.TAG] == keys, cls.TAG
    assert f"EVENTS_VERSION {ev.EVENTS_VERSION}" in (ev.__doc__ or "")
