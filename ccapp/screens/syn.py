"""C2-Syn in the app: a form that becomes a `ccapp syn …` child, and its live view.

The live view shows progress with rate and ETA, the counts the filters and the verification
kept and dropped, and the latest group's six responses best to worst with the corrective
trigger lit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group as RichGroup
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, RichLog, Static

from ccapp.engines.c2syn.config import SynConfig
from ccapp.engines.data import data_problem
from ccapp.engines.events import (
    ErrorEvent,
    Event,
    GroupDone,
    Log,
    ModelLoading,
    Progress,
    RunFinished,
    RunStarted,
)
from ccapp.engines.generation.models import model_problem
from ccapp.screens.job_form import JobFormScreen, found, four_bit_problem, launch_binding
from ccapp.screens.jobs import Job, JobEnded
from ccapp.screens.live_base import JobState, LiveJobScreen, stop_binding
from ccapp.screens.option_form import OptionTexts, form_command, read_values
from ccapp.screens.widgets import Palette

RANK_NAMES = ("safe", "SYN1", "SYN2", "SYN3", "SYN4", "harmful")


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
        data=None if use_run else data_problem(v.data),
        model=model_problem(v.model),
        load_in_4bit=four_bit_problem(values),
    )
    return form_command("syn", v.config, values), problems


class SynFormScreen(JobFormScreen[SynValues]):
    CSS_PATH = "syn.tcss"
    AUTO_FOCUS = "#syn-model"
    BINDINGS = [launch_binding("syn", "Start synthesizing")]

    VALUES = SynValues
    FORM_TITLE = "Synthesize preference pairs (C2-Syn)"
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
    ID_PREFIX = "syn-"
    PROBES_DEVICES = True

    def job_args(self, values: SynValues) -> tuple[list[str], dict[str, str]]:
        return syn_args(values)

    def live_screen(self, job: Job, title: str, db_path: Path) -> Screen[Any]:
        return SynLiveScreen(job, title)


@dataclass
class SynState(JobState):
    model: str = ""
    done: int = 0
    total: int = 0
    rate: float | None = None
    eta_s: float | None = None
    ok: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latest: GroupDone | None = None


class SynLiveScreen(LiveJobScreen[SynState]):
    CSS_PATH = "syn.tcss"
    LOG_ID = "syn-log"
    BINDINGS = [
        stop_binding("syn", "While running: ask to cancel (the run is paused). After: go back"),
    ]

    STOP_QUESTION = "Cancel this run? It stops after the batch in hand and is paused."

    def __init__(self, job: Job, title: str):
        super().__init__(job, SynState())
        self.title_text = title

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="syn-status"):
            yield Static(self.title_text, id="syn-title", markup=False)
            yield ProgressBar(id="syn-progress", show_eta=False)
            yield Static("", id="syn-rate", markup=False)
            yield Static("", id="syn-counts", markup=False)
        yield VerticalScroll(Static(id="syn-latest-body"), id="syn-latest")
        yield RichLog(id="syn-log", max_lines=300, wrap=True, markup=False)
        yield Footer()

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
            case Progress(done=done, total=total, rate=rate, eta_s=eta_s):
                s.done, s.total, s.rate, s.eta_s = done, total, rate, eta_s
            case RunFinished(status=status):
                s.status = status
            case Log() | ErrorEvent() | ModelLoading():
                self.write_log(event)

    def ended(self, message: JobEnded) -> None:
        if self.state.status == "paused":
            self.notify(
                f"run {self.state.run_id} is paused; resume it with ccapp syn --resume {self.state.run_id}"
            )

    def paint(self) -> None:
        s = self.state
        self.query_one("#syn-title", Static).update(
            f"syn run {s.run_id if s.run_id is not None else '…'} · {s.model} · {s.status}"
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
            f"kept {s.ok} groups ({15 * s.ok} pairs) · rejected {s.rejected}{reasons}"
        )
        if s.latest is not None:
            self.query_one("#syn-latest-body", Static).update(self._group_view(s.latest))

    def _group_view(self, group: GroupDone) -> RichGroup:
        palette = Palette.from_theme(self.app.current_theme)
        parts: list[Text] = [Text(f"request {group.item}: {group.request}", style="bold")]
        if group.status != "ok":
            parts.append(Text(f"rejected: {group.reason}", style=f"bold {palette.error}"))
        for response in group.responses:
            line = Text()
            line.append(f"{RANK_NAMES[response.rank]:>8}  ", style=f"bold {palette.dim}")
            text, trigger = response.text, response.trigger
            if trigger and trigger in text:
                at = text.index(trigger)
                line.append(text[:at])
                line.append(trigger, style=f"bold reverse {palette.accent}")
                line.append(text[at + len(trigger) :])
            else:
                line.append(text)
            parts.append(line)
        return RichGroup(*parts)
