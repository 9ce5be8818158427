"""DPO training in the app: a form that becomes a `ccapp train …` child, and its live curves.

The live view charts the loss and the reward margin and accuracy as the steps come in, with
step progress and ETA; when the run is done, `v` evaluates the trained model with the
settings of the last evaluation in the store, closing the loop eval → syn → train → eval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, RichLog, Static
from textual_plotext import PlotextPlot

from ccapp.engines.c2eval.config import EvalConfig
from ccapp.engines.dpo.config import TrainConfig
from ccapp.engines.events import (
    ErrorEvent,
    Event,
    Log,
    ModelLoading,
    Progress,
    RunFinished,
    RunStarted,
    TrainLog,
)
from ccapp.engines.generation.backend import LOADING, SERVER
from ccapp.engines.generation.models import model_problem
from ccapp.engines.options import declared
from ccapp.screens.job_form import JobFormScreen, found, launch_binding
from ccapp.screens.jobs import Job, JobEnded
from ccapp.screens.live_base import JobState, LiveJobScreen, stop_binding
from ccapp.screens.option_form import OptionTexts, form_command, read_values
from ccapp.store import RunKind, Store, runs


class TrainValues(OptionTexts):
    """The form as typed: TrainConfig's labelled fields."""

    config = TrainConfig


def train_args(v: TrainValues) -> tuple[list[str], dict[str, str]]:
    """The `ccapp train` arguments for the form, and the problems by field id."""
    values, problems = read_values(v.config, v.texts())
    pairs = str(v.pairs).strip()
    if not pairs:
        problems["pairs"] = "a syn run id, or a folder from ccapp export --format pairs"
    elif not pairs.isdigit() and not Path(pairs).expanduser().is_dir():
        problems["pairs"] = "not a run id, and no such folder"
    problems |= found(model=model_problem(v.model))
    return form_command("train", v.config, values), problems


def eval_args_like_last(store: Store, model: str) -> list[str] | None:
    """`ccapp eval` arguments that repeat the newest eval run's settings on another model:
    those that decide its results, but for the model and how it was loaded or served."""
    last = runs.list_runs(store, kind=RunKind.EVAL, limit=1)
    if not last:
        return None
    stored = last[0].config
    repeated = {
        d.name: stored[d.name]
        for d in declared(EvalConfig)
        if d.option.decides_results
        and d.option.group not in (LOADING, SERVER)
        and d.name != "model"
        and d.name in stored
    }
    return form_command("eval", EvalConfig, {"model": model} | repeated)


class TrainFormScreen(JobFormScreen[TrainValues]):
    CSS_PATH = "train.tcss"
    AUTO_FOCUS = "#train-pairs"
    BINDINGS = [launch_binding("train", "Start DPO training")]

    VALUES = TrainValues
    FORM_TITLE = "DPO training on C2-Syn pairs"
    # The form's rows, top to bottom (rows of fields TrainConfig declares).
    ROWS = ("pairs", "model", "method", "dpo", "batches", "output")
    ID_PREFIX = "train-"

    def job_args(self, values: TrainValues) -> tuple[list[str], dict[str, str]]:
        return train_args(values)

    def live_screen(self, job: Job, title: str, db_path: Path) -> Screen[Any]:
        return TrainLiveScreen(job, title, db_path)


@dataclass
class TrainState(JobState):
    step: int = 0
    total: int = 0
    rate: float | None = None
    eta_s: float | None = None
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    margin: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    output: str | None = None


class TrainLiveScreen(LiveJobScreen[TrainState]):
    CSS_PATH = "train.tcss"
    LOG_ID = "train-log"
    BINDINGS = [
        stop_binding(
            "train", "While running: stop at the next step, save a checkpoint (paused). After: back"
        ),
        Binding(
            "v",
            "evaluate",
            "Evaluate it",
            id="train.evaluate",
            tooltip="Evaluate the trained model with the last eval run's settings",
        ),
    ]

    PAINT_EVERY_S = 0.25
    ERROR_TITLE = "The training stopped with an error"
    STOP_QUESTION = (
        "Stop training? It stops at the next step, saves a checkpoint and "
        "is paused (ccapp train --resume)."
    )
    STOP_YES, STOP_NO = "Stop", "Keep training"

    def __init__(self, job: Job, title: str, db_path: Path):
        super().__init__(job, TrainState())
        self.title_text, self.db_path = title, db_path

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="train-status"):
            yield Static(self.title_text, id="train-title", markup=False)
            yield ProgressBar(id="train-progress", show_eta=False)
            yield Static("", id="train-rate", markup=False)
        with Horizontal(id="train-charts"):
            yield PlotextPlot(id="train-loss")
            yield PlotextPlot(id="train-margin")
        yield RichLog(id="train-log", max_lines=300, wrap=True, markup=False)
        yield Footer()

    def apply(self, event: Event) -> None:
        s = self.state
        match event:
            case RunStarted(totals=totals):
                s.status, s.total = "running", totals.get("steps", 0)
            case TrainLog(step=step, loss=loss, reward_margin=margin, reward_accuracy=accuracy):
                s.steps.append(step)
                s.loss.append(loss or 0.0)
                s.margin.append(margin or 0.0)
                s.accuracy.append(accuracy or 0.0)
            case Progress(done=done, total=total, rate=rate, eta_s=eta_s):
                s.step, s.total, s.rate, s.eta_s = done, total or s.total, rate, eta_s
            case RunFinished(status=status, metrics=metrics):
                s.status = status
                s.output = (metrics or {}).get("output")
            case Log() | ErrorEvent() | ModelLoading():
                self.write_log(event)

    def ended(self, message: JobEnded) -> None:
        if self.state.status == "done":
            self.notify(
                "press v to evaluate the trained model", title=f"run {self.state.run_id} done"
            )

    def paint(self) -> None:
        s = self.state
        self.query_one("#train-title", Static).update(f"train run {s.run_id or '…'} · {s.status}")
        self.query_one("#train-progress", ProgressBar).update(
            total=max(s.total, 1), progress=s.step
        )
        line = f"step {s.step}/{s.total}"
        if s.rate:
            line += f" · {s.rate:.2f} steps/s"
        if s.eta_s is not None and s.status == "running":
            line += f" · ETA {int(s.eta_s)}s"
        if s.loss:
            line += f" · loss {s.loss[-1]:.4f} · margin {s.margin[-1]:.3f} · accuracy {s.accuracy[-1]:.2f}"
        self.query_one("#train-rate", Static).update(line)
        if s.steps:
            loss = self.query_one("#train-loss", PlotextPlot)
            loss.plt.clear_data()
            loss.plt.title("DPO loss")
            loss.plt.plot(s.steps, s.loss, marker="braille", color="cyan")
            loss.refresh()
            margin = self.query_one("#train-margin", PlotextPlot)
            margin.plt.clear_data()
            margin.plt.title("reward margin (cyan) · accuracy (orange)")
            margin.plt.plot(s.steps, s.margin, marker="braille", color="cyan")
            margin.plt.plot(s.steps, s.accuracy, marker="braille", color="orange", yside="right")
            margin.refresh()

    def action_evaluate(self) -> None:
        if self.state.status != "done" or not self.state.output:
            self.notify("Evaluate once the training is done.")
            return
        with Store.open(self.db_path) as store:
            args = eval_args_like_last(store, self.state.output)
        if args is None:
            self.notify(
                "No eval run yet to copy the settings of: use F2 to evaluate.", severity="warning"
            )
            return
        from ccapp.screens.jobs import ChildJob
        from ccapp.screens.live_run import LiveRunScreen

        self.app.push_screen(
            LiveRunScreen(
                ChildJob([*args, "--db", str(self.db_path)]),
                f"ccapp {' '.join(args)}",
                self.db_path,
            )
        )
