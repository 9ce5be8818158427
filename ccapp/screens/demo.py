"""The demo in the app: a form of its declared options (the data to split, a real model or
the toy), then `ccapp demo` as a child, its stages, the log, and the verdict.

The demo builds and trains a toy model, so it takes minutes; this screen shows which stage
is running and how far it got, then the before/after Corr@k table with the fluency check and
the plain verdict — the same numbers `ccapp demo` prints, and the same runs in History.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Header, ProgressBar, RichLog, Static

from ccapp.engines.data import data_problem
from ccapp.engines.demo.config import REAL_STAGES, TOY_STAGES, DemoOptions
from ccapp.engines.events import DemoFinished, DemoStage, ErrorEvent, Event, Log
from ccapp.screens.job_form import JobFormScreen, found
from ccapp.screens.jobs import JobEnded
from ccapp.screens.live_base import JobState, LiveJobScreen
from ccapp.screens.option_form import OptionTexts, form_command, read_values
from ccapp.screens.widgets import footer

# The fluency measures the verdict checks, as the table names them.
FLUENCY_ROWS = (
    ("distinct2_per_continuation", "distinct-2"),
    ("degenerate_share", "degenerate"),
)


@dataclass
class DemoState(JobState):
    stage: str | None = None
    stages: dict[str, str] = field(default_factory=dict)  # by name, in the loop's order
    result: DemoFinished | None = None


class DemoScreen(LiveJobScreen[DemoState]):
    NAME = "demo"
    STOP_TIP = "While running: stop the demo (finished runs stay in the store). After: back"
    PAINT_EVERY_S = 0.25
    RESUMABLE = False  # a stopped demo starts over: it is cancelled, not paused
    ERROR_TITLE = "The demo stopped with an error"
    STOP_QUESTION = "Stop the demo? Its finished runs stay in the store."
    STOP_YES, STOP_NO = "Stop", "Keep going"

    STATE = DemoState
    LOGGED = (Log, ErrorEvent)  # its stages are the table, not log lines

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="demo-status"):
            yield Static("", id="demo-title", markup=False)
            yield DataTable(id="demo-stages", cursor_type="none", show_cursor=False)
            yield ProgressBar(id="demo-progress", show_eta=False)
            yield Static("", id="demo-rate", markup=False)
        with VerticalScroll(id="demo-result-box"):
            yield Static("", id="demo-result")
        yield RichLog(id="demo-log", max_lines=400, wrap=True, markup=False)
        yield from footer()

    def on_mount(self) -> None:
        table = self.query_one("#demo-stages", DataTable)
        table.add_column("stage", key="stage", width=18)
        table.add_column("state", key="state", width=14)
        # the stages its command line runs (a real model: the helpfulness guard, no toy)
        real = "--model" in self.job.args
        for stage in REAL_STAGES if real else TOY_STAGES:
            self.state.stages[stage] = "waiting"
        self.query_one("#demo-result-box").display = False

    def apply(self, event: Event) -> None:
        s = self.state
        match event:
            case DemoStage(stage=stage, state="started"):
                s.status = "running"
                s.stage, s.done, s.total, s.eta_s = stage, 0, 0, None
                s.stages[stage] = "running"
            case DemoStage(stage=stage, seconds=seconds):
                s.status = "running"
                s.stages[stage] = f"done in {seconds or 0:.0f}s"
            case DemoFinished():
                s.result = event

    def paint(self) -> None:
        s = self.state
        stage = f" · {s.stage}" if s.stage and s.status == "running" else ""
        self.query_one("#demo-title", Static).update(f"ccapp demo · {s.status}{stage}")
        table = self.query_one("#demo-stages", DataTable)
        for name, state in s.stages.items():  # a stage this view did not expect gets a row
            if name in table.rows:
                table.update_cell(name, "state", state)
            else:
                table.add_row(name, state, key=name)
        self.query_one("#demo-progress", ProgressBar).update(total=max(s.total, 1), progress=s.done)
        line = f"{s.done}/{s.total}" if s.total else ""
        if s.eta_s is not None and s.status == "running":
            line += f" · ETA {int(s.eta_s)}s"
        self.query_one("#demo-rate", Static).update(line)
        if s.result is not None:  # the verdict is what the demo is for: it takes the room
            self.query_one("#demo-result", Static).update(result_view(s.result))
            self.query_one("#demo-result-box").display = True
            for part in ("#demo-stages", "#demo-progress", "#demo-rate"):
                self.query_one(part).display = False
            self.add_class("-finished")

    def ended(self, message: JobEnded) -> None:
        """The log's last line says how the demo ended: its verdict and where its runs
        are, or the stage it failed in."""
        s = self.state
        log = self.query_one("#demo-log", RichLog)
        if s.status == "failed":
            if s.stage is not None and s.stages.get(s.stage) == "running":
                s.stages[s.stage] = "failed"
            where = f" in its {s.stage} stage" if s.stage else " before its first stage"
            log.write(Text(f"demo failed{where}: {message.error_line}"))
        elif s.result is not None:
            runs = ", ".join(
                f"{name.replace('_', ' ')} {rid}" for name, rid in s.result.runs.items()
            )
            log.write(Text(f"demo done (its verdict is above); its runs, in F3: {runs}."))
        elif s.status == "cancelled":
            if s.stage is not None and s.stages.get(s.stage) == "running":
                s.stages[s.stage] = "cancelled"
            log.write(Text("demo stopped: the runs it finished stay in the store (F3)."))


def result_view(result: DemoFinished) -> Table:
    """Before/after Corr@k with intervals, fluency, the verdict and the toy-model note; every
    string from the run is passed as Text, so nothing in it is read as markup."""
    before, after = result.before, result.after
    table = Table(  # no outer frame: the verdict stays in view at 80×24
        "",
        "before [95% CI]",
        "after [95% CI]",
        title="Corr@k on held-out requests",
        box=box.SIMPLE_HEAD,
        expand=True,
        show_edge=False,
    )

    def cell(metrics: dict[str, Any], key: str) -> str:
        value = metrics.get("corr_mean") if key == "mean" else metrics.get("corr", {}).get(key)
        ci = metrics.get("ci95", {}).get(key)
        if value is None:
            return "–"
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"

    for k in sorted({*before.get("corr", {}), *after.get("corr", {})}, key=int):
        table.add_row(f"k={k}", cell(before, k), cell(after, k))
    table.add_row("mean", cell(before, "mean"), cell(after, "mean"), style="bold")
    fb, fa = result.fluency_before, result.fluency_after
    for key, name in FLUENCY_ROWS:
        table.add_row(name, str(fb.get(key)), str(fa.get(key)))
    table.caption = Text(f"{result.verdict}\n{result.note}")
    return table


class DemoValues(OptionTexts):
    """The form as typed: DemoOptions' labelled fields."""

    config = DemoOptions


def demo_args(v: DemoValues) -> tuple[list[str], dict[str, str]]:
    """The `ccapp demo` arguments for the form, and the problems by field."""
    values, problems = read_values(v.config, v.texts())
    return form_command("demo", v.config, values), problems | found(data=data_problem(v.data))


class DemoFormScreen(JobFormScreen[DemoValues]):
    """What the demo runs on, asked before it starts: it trains a model for minutes and adds
    five runs to the store, and its default data needs the network once."""

    VALUES = DemoValues
    LAUNCH_TIP = "Start the demo"
    FORM_TITLE = (
        "The demo: eval → syn → DPO → eval on this machine, before and after. The toy model "
        "takes under 10 minutes on a CPU, a real one about 30; its runs land in History."
    )
    ROWS = ("data", "model", "quick", "seed")
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="demo-form.back")]
    ARGS = staticmethod(demo_args)
    LIVE_SCREEN = DemoScreen
    ID_PREFIX = "demo-"
