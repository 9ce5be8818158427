"""C2-Syn in the app: a form that becomes a `ccapp syn …` child, and its live view.

The live view shows progress with rate and ETA, the counts the filters and the verification
kept and dropped, and the latest group's six responses best to worst with the corrective
trigger lit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Group as RichGroup
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import ProgressBar, RichLog, Static

from ccapp.engines.c2syn.config import SynConfig
from ccapp.engines.data import data_problem
from ccapp.engines.events import (
    Event,
    GroupDone,
    RunFinished,
    RunStarted,
)
from ccapp.screens.job_form import JobFormScreen, found, four_bit_problem
from ccapp.screens.jobs import JobEnded
from ccapp.screens.live_base import JobState, LiveJobScreen
from ccapp.screens.option_form import OptionTexts, form_command, read_values
from ccapp.screens.widgets import Palette, footer, many

RANK_NAMES = ("safe", "SYN1", "SYN2", "SYN3", "SYN4", "harmful")


class Ranked(Protocol):
    """One of a group's six responses, as an event (GroupResponse) or the store has it."""

    @property
    def rank(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def trigger(self) -> str | None: ...


def response_line(response: Ranked, palette: Palette) -> Text:
    """A ranked response with its cut and its corrective trigger lit: the harmful prefix as
    it is, a ✂ where it was cut, the trigger reversed, the model's continuation after it."""
    line = Text()
    line.append(f"{RANK_NAMES[response.rank]:>8}  ", style=f"bold {palette.dim}")
    text, trigger = response.text, response.trigger
    if trigger and trigger in text:
        at = text.index(trigger)
        line.append(text[:at].rstrip())
        line.append(" ✂ ", style=f"bold {palette.warning}")
        line.append(trigger.strip(), style=f"bold reverse {palette.accent}")
        line.append(text[at + len(trigger) :], style=palette.success)
    else:
        line.append(text)
    return line


def group_view(
    item: int,
    request: str,
    status: str,
    reason: str | None,
    responses: Sequence[Ranked],
    palette: Palette,
) -> RichGroup:
    """A group: its request, why it was rejected if it was, its responses best to worst."""
    parts: list[Text] = [Text(f"request {item}: {request}", style="bold")]
    if status != "ok":
        parts.append(Text(f"rejected: {reason}", style=f"bold {palette.error}"))
    parts += [response_line(response, palette) for response in responses]
    return RichGroup(*parts)


class SynValues(OptionTexts):
    """The form as typed: SynConfig's labelled fields."""

    config = SynConfig


def syn_args(v: SynValues) -> tuple[list[str], dict[str, str]]:
    """The `ccapp syn` arguments for the form, and the problems by field id."""
    use_run = bool(str(v.from_run).strip())  # the requests of an eval run, not the data
    texts = v.texts() | ({"data": ""} if use_run else {})
    values, problems = read_values(v.config, texts)
    if use_run:
        problems.pop("data", None)  # no data is asked for: a bad run id is the problem
    problems |= found(
        data=None if use_run else data_problem(v.data), load_in_4bit=four_bit_problem(values)
    )
    return form_command("syn", v.config, values), problems


@dataclass
class SynState(JobState):
    model: str = ""
    ok: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latest: GroupDone | None = None


class SynLiveScreen(LiveJobScreen[SynState]):
    NAME = "syn"
    STOP_QUESTION = "Cancel this run? It stops after the batch in hand and is paused."

    STATE = SynState

    def compose(self) -> ComposeResult:
        yield from self.status_block(
            Static("", id="syn-rate", markup=False), Static("", id="syn-counts", markup=False)
        )
        yield VerticalScroll(Static(id="syn-latest-body"), id="syn-latest")
        yield RichLog(id="syn-log", max_lines=300, wrap=True, markup=False)
        yield from footer()

    def apply(self, event: Event) -> None:
        s = self.state
        match event:
            case RunStarted(config=config, totals=totals):
                s.status, s.total = "running", totals.get("groups", 0)
                s.done = s.total - totals.get("todo", 0)
                s.model = config.get("model", "")
            case GroupDone(status=status, reason=reason):
                s.latest = event
                if status == "ok":
                    s.ok += 1
                else:
                    s.reasons[reason or "?"] = s.reasons.get(reason or "?", 0) + 1
                    s.rejected += 1
            case RunFinished(status=status):
                s.status = status

    def ended(self, message: JobEnded) -> None:
        if self.state.status == "paused":
            self.notify(
                f"run {self.state.run_id} is paused; resume it with ccapp syn --resume {self.state.run_id}"
            )

    def paint(self) -> None:
        s = self.state
        self.query_one("#syn-title", Static).update(
            " · ".join(
                part
                for part in (f"syn run {s.run_id if s.run_id is not None else '…'}", s.model)
                if part
            )
            + f" · {s.status}"
        )
        self.query_one("#syn-progress", ProgressBar).update(total=max(s.total, 1), progress=s.done)
        rate = f"{s.done}/{s.total} groups"
        if s.rate:
            rate += f" · {s.rate:.2f}/s"
        if s.eta_s is not None and s.status == "running":
            rate += f" · ETA {int(s.eta_s)}s"
        self.query_one("#syn-rate", Static).update(rate)
        reasons = "".join(f" · {reason}: {n}" for reason, n in s.reasons.items())
        self.query_one("#syn-counts", Static).update(
            f"kept {many(s.ok, 'group')} ({15 * s.ok} pairs) · rejected {s.rejected}{reasons}"
        )
        if s.latest is not None:
            self.query_one("#syn-latest-body", Static).update(self._group_view(s.latest))

    def _group_view(self, group: GroupDone) -> RichGroup:
        palette = Palette.from_theme(self.app.current_theme)
        return group_view(
            group.item, group.request, group.status, group.reason, group.responses, palette
        )


class SynFormScreen(JobFormScreen[SynValues]):
    VALUES = SynValues
    FORM_TITLE = "Synthesize preference pairs (C2-Syn)"
    LAUNCH_TIP = "Start synthesizing"
    # The form's rows, top to bottom (rows of fields SynConfig declares).
    ROWS = (
        "model",
        "device",
        "precision",
        "data",
        "from_run",
        "filters",
        "sampling",
        "verify_judge",
    )
    ARGS = staticmethod(syn_args)
    LIVE_SCREEN = SynLiveScreen
    ID_PREFIX = "syn-"
    PROBES_DEVICES = True
    FORGETS = ("from_run",)  # a run of this store, which may be gone by the next start
