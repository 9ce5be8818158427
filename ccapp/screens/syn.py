"""C2-Syn in the app: a form that becomes a `ccapp syn …` child, and its live view.

The live view shows progress with rate and ETA, the counts the filters and the verification
kept and dropped, and the latest group's six responses best to worst with the corrective
trigger lit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Group as RichGroup
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    ProgressBar,
    RichLog,
    Select,
    Static,
    Switch,
)

from ccapp.engines.c2syn.config import SynConfig
from ccapp.engines.data import data_problem
from ccapp.engines.devices import Device
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
from ccapp.engines.generation.presets import PRESETS
from ccapp.engines.options import Declared
from ccapp.screens.base import AppScreen
from ccapp.screens.form_problems import refuse_launch, show_problems
from ccapp.screens.jobs import Job, JobEnded
from ccapp.screens.live_base import JobState, LiveJobScreen
from ccapp.screens.option_form import (
    OptionTexts,
    compose_row,
    field_box,
    form_command,
    form_rows,
    option_widget,
    read_values,
    read_widgets,
    row_order,
)
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
    elif (problem := data_problem(v.data)) is not None:
        problems["data"] = problem
    if (problem := model_problem(v.model)) is not None:
        problems["model"] = problem
    if values.get("load_in_4bit") and values.get("device") == "cpu":
        problems["load_in_4bit"] = "4-bit needs a CUDA GPU"
    return form_command("syn", v.config, values), problems


# The form's rows, top to bottom (rows of fields SynConfig declares).
ROWS = ("model", "device", "precision", "data", "from_run", "filters", "sampling", "verify_judge")


def widget_id(name: str) -> str:
    """The id of a field's widget in the Synthesize form."""
    return f"syn-{name}"


class SynFormScreen(AppScreen[None]):
    CSS_PATH = "syn.tcss"
    AUTO_FOCUS = "#syn-model"
    BINDINGS = [
        Binding("ctrl+s", "launch", "Launch", id="syn.launch", tooltip="Start synthesizing")
    ]

    def __init__(self, values: SynValues | None = None):
        super().__init__()
        self.values = values or SynValues()

    def compose(self) -> ComposeResult:
        rows = form_rows(self.values.config)
        yield Header()
        with VerticalScroll(id="syn-form"):
            yield Static("Synthesize preference pairs (C2-Syn)", classes="form-title")
            for key in row_order(self.values.config, ROWS):
                yield from compose_row(rows[key], self._option)
            yield Button("Launch (ctrl+s)", variant="primary", id="syn-launch")
        yield Footer()

    def _option(self, d: Declared) -> ComposeResult:
        """A declared field of SynConfig; its widget's id is `syn-` and its name."""
        extra: dict[str, Any] = {}
        if d.name == "model":
            extra["suggester"] = SuggestFromList(list(PRESETS), case_sensitive=False)
        yield from field_box(
            d.option.label,
            option_widget(d, getattr(self.values, d.name), widget_id(d.name), **extra),
            f"syn-problem-{d.name}",
        )

    def on_mount(self) -> None:
        self.probe_devices()
        self.validate()

    @work(exclusive=True, group="syn-devices", exit_on_error=False)
    async def probe_devices(self) -> None:
        try:
            devices: list[Device] = await self.services.probe_devices()
        except Exception:
            return
        options = [("auto", "auto")] + [(f"{d.id} — {d.name}", d.id) for d in devices]
        select = self.query_one("#syn-device", Select)
        select.set_options(options)
        select.value = "auto"

    def read(self) -> SynValues:
        return type(self.values)(**read_widgets(self, self.values.config, widget_id))

    def validate(self) -> tuple[list[str], dict[str, str]]:
        args, problems = syn_args(self.read())
        show_problems(self, "syn-problem-", problems)
        return args, problems

    @on(Input.Changed)
    @on(Switch.Changed)
    def changed(self) -> None:
        self.validate()

    @on(Button.Pressed, "#syn-launch")
    def action_launch(self) -> None:
        args, problems = self.validate()
        if refuse_launch(self, problems):
            return
        from ccapp.screens.jobs import ChildJob

        db_path = self.services.db_path
        self.app.push_screen(
            SynLiveScreen(ChildJob([*args, "--db", str(db_path)]), f"ccapp {' '.join(args)}")
        )


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
    BINDINGS = [
        Binding(
            "escape",
            "stop_or_back",
            "Cancel / back",
            id="syn.cancel",
            tooltip="While running: ask to cancel (the run is paused). After: go back",
        ),
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
            case Log(message=message) | ErrorEvent(message=message):
                self.query_one("#syn-log", RichLog).write(Text(message))
            case ModelLoading(phase=phase, detail=detail):
                self.query_one("#syn-log", RichLog).write(Text(f"model: {phase} {detail or ''}"))

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
