"""DPO training in the app: a form that becomes a `ccapp train …` child, and its live curves.

The live view charts the loss and the reward margin and accuracy as the steps come in, with
step progress and ETA; when the run is done, `v` evaluates the trained model with the
settings of the last evaluation in the store, closing the loop eval → syn → train → eval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Select,
    Static,
)
from textual_plotext import PlotextPlot

from ccapp.engines.generation.models import model_problem
from ccapp.engines.generation.presets import PRESETS
from ccapp.screens.form_problems import refuse_launch, show_problems
from ccapp.screens.jobs import Job, JobEnded, JobEvent
from ccapp.screens.modals import ErrorModal, stop_or_back
from ccapp.store import RunKind, Store, runs

METHODS = [
    ("LoRA (reference: the base, adapter off)", "lora"),
    ("full (with a reference copy)", "full"),
    ("QLoRA (4-bit, CUDA)", "qlora"),
]


@dataclass
class TrainValues:
    pairs: str = ""
    model: str = "tiny"
    method: str = "lora"
    lr: str = ""
    beta: str = "0.1"
    epochs: str = "1"
    batch_size: str = "4"
    max_length: str = "1024"
    output: str = ""


def train_args(v: TrainValues) -> tuple[list[str], dict[str, str]]:
    problems: dict[str, str] = {}
    pairs = v.pairs.strip()
    if not pairs:
        problems["pairs"] = "a syn run id, or a folder from ccapp export --format pairs"
    elif not pairs.isdigit() and not Path(pairs).expanduser().is_dir():
        problems["pairs"] = "not a run id, and no such folder"
    if (problem := model_problem(v.model)) is not None:
        problems["model"] = problem
    for name, text, kind, optional in (
        ("lr", v.lr, float, True),
        ("beta", v.beta, float, False),
        ("epochs", v.epochs, float, False),
        ("batch_size", v.batch_size, int, False),
        ("max_length", v.max_length, int, False),
    ):
        if optional and not text.strip():
            continue
        try:
            if kind(text) <= 0:
                problems[name] = "must be above 0"
        except ValueError:
            problems[name] = "not a number" if kind is float else "not a whole number"
    args = [
        "train",
        "--pairs",
        pairs,
        "--model",
        v.model.strip(),
        "--method",
        v.method,
        "--beta",
        v.beta.strip(),
        "--epochs",
        v.epochs.strip(),
        "--batch-size",
        v.batch_size.strip(),
        "--max-length",
        v.max_length.strip(),
    ]
    if v.lr.strip():
        args += ["--lr", v.lr.strip()]
    if v.output.strip():
        args += ["--output", v.output.strip()]
    return args, problems


def eval_args_like_last(store: Store, model: str) -> list[str] | None:
    """`ccapp eval` arguments that repeat the newest eval run's settings on another model."""
    last = runs.list_runs(store, kind=RunKind.EVAL, limit=1)
    if not last:
        return None
    c = last[0].config
    args = [
        "eval",
        "--model",
        model,
        "--data",
        str(c.get("data")),
        "--k",
        ",".join(map(str, c.get("ks", []))),
    ]
    for option, key in (
        ("--paths", "paths"),
        ("--max-new-tokens", "max_new_tokens"),
        ("--temperature", "temperature"),
        ("--top-p", "top_p"),
        ("--seed", "seed"),
        ("--unit", "unit"),
        ("--judge", "judge"),
        ("--limit", "limit"),
        ("--device", "device"),
    ):
        if c.get(key) is not None:
            args += [option, str(c[key])]
    return args


class TrainFormScreen(Screen[None]):
    CSS_PATH = "train.tcss"
    AUTO_FOCUS = "#train-pairs"
    BINDINGS = [
        Binding("ctrl+s", "launch", "Launch", id="train.launch", tooltip="Start DPO training")
    ]

    def compose(self) -> ComposeResult:
        v = TrainValues()
        yield Header()
        with VerticalScroll(id="train-form"):
            yield Static("DPO training on C2-Syn pairs", classes="form-title")
            yield from self._field(
                "pairs",
                "Pairs: a syn run id or an exported folder",
                Input(v.pairs, id="train-pairs", placeholder="e.g. 9"),
            )
            yield from self._field(
                "model",
                "Model to train",
                Input(
                    v.model,
                    id="train-model",
                    suggester=SuggestFromList(list(PRESETS), case_sensitive=False),
                ),
            )
            yield from self._field(
                "method",
                "Method",
                Select(METHODS, value=v.method, id="train-method", allow_blank=False),
            )
            with Horizontal(classes="row"):
                yield from self._field(
                    "lr", "Learning rate", Input(v.lr, id="train-lr", placeholder="LoRA 5e-5")
                )
                yield from self._field("beta", "Beta", Input(v.beta, id="train-beta"))
                yield from self._field("epochs", "Epochs", Input(v.epochs, id="train-epochs"))
            with Horizontal(classes="row"):
                yield from self._field(
                    "batch_size", "Batch size", Input(v.batch_size, id="train-batch")
                )
                yield from self._field(
                    "max_length", "Max length", Input(v.max_length, id="train-max-length")
                )
            yield from self._field(
                "output", "Output folder (optional)", Input(v.output, id="train-output")
            )
            yield Button("Launch (ctrl+s)", variant="primary", id="train-launch")
        yield Footer()

    def _field(self, key: str, label: str, widget: Any) -> ComposeResult:
        with Vertical(classes="field"):
            yield Label(label)
            yield widget
            yield Static("", classes="problem", id=f"train-problem-{key}", markup=False)

    def on_mount(self) -> None:
        self.validate()

    def read(self) -> TrainValues:
        q = self.query_one
        return TrainValues(
            pairs=q("#train-pairs", Input).value,
            model=q("#train-model", Input).value,
            method=str(q("#train-method", Select).value),
            lr=q("#train-lr", Input).value,
            beta=q("#train-beta", Input).value,
            epochs=q("#train-epochs", Input).value,
            batch_size=q("#train-batch", Input).value,
            max_length=q("#train-max-length", Input).value,
            output=q("#train-output", Input).value,
        )

    def validate(self) -> tuple[list[str], dict[str, str]]:
        args, problems = train_args(self.read())
        show_problems(self, "train-problem-", problems)
        return args, problems

    @on(Input.Changed)
    @on(Select.Changed)
    def changed(self) -> None:
        self.validate()

    @on(Button.Pressed, "#train-launch")
    def action_launch(self) -> None:
        args, problems = self.validate()
        if refuse_launch(self, problems):
            return
        from ccapp.screens.jobs import ChildJob

        db_path = self.app.db_path  # type: ignore[attr-defined]
        self.app.push_screen(
            TrainLiveScreen(
                ChildJob([*args, "--db", str(db_path)]), f"ccapp {' '.join(args)}", db_path
            )
        )


@dataclass
class TrainState:
    run_id: int | None = None
    status: str = "starting"
    step: int = 0
    total: int = 0
    rate: float | None = None
    eta_s: float | None = None
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    margin: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    output: str | None = None


class TrainLiveScreen(Screen[None]):
    CSS_PATH = "train.tcss"
    BINDINGS = [
        Binding(
            "escape",
            "stop_or_back",
            "Cancel / back",
            id="train.cancel",
            tooltip="While running: stop at the next step, save a checkpoint (paused). After: back",
        ),
        Binding(
            "v",
            "evaluate",
            "Evaluate it",
            id="train.evaluate",
            tooltip="Evaluate the trained model with the last eval run's settings",
        ),
    ]

    def __init__(self, job: Job, title: str, db_path: Path):
        super().__init__()
        self.job, self.title_text, self.db_path = job, title, db_path
        self.state = TrainState()
        self.finished = False
        self._dirty = True

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

    def on_mount(self) -> None:
        self.set_interval(0.25, self.paint)
        self.run_job()

    @work(exclusive=True, group="train-job", exit_on_error=False)
    async def run_job(self) -> None:
        await self.job.run(self)

    @on(JobEvent)
    def take_event(self, message: JobEvent) -> None:
        e, s = message.data, self.state
        kind = e.get("event")
        if e.get("run_id") is not None:
            s.run_id = e["run_id"]
        if kind == "run_started":
            s.status, s.total = "running", e.get("totals", {}).get("steps", 0)
        elif kind == "train_log":
            s.steps.append(e["step"])
            s.loss.append(e.get("loss") or 0.0)
            s.margin.append(e.get("reward_margin") or 0.0)
            s.accuracy.append(e.get("reward_accuracy") or 0.0)
        elif kind == "progress":
            s.step, s.total, s.rate, s.eta_s = (
                e["done"],
                e.get("total") or s.total,
                e.get("rate"),
                e.get("eta_s"),
            )
        elif kind == "run_finished":
            s.status = e.get("status", s.status)
            s.output = (e.get("metrics") or {}).get("output")
        elif kind in ("log", "error", "model_loading"):
            text = e.get("message") or f"model: {e.get('phase')} {e.get('detail') or ''}"
            self.query_one("#train-log", RichLog).write(Text(str(text)))
        self._dirty = True

    @on(JobEnded)
    def job_ended(self, message: JobEnded) -> None:
        self.finished = True
        if self.state.status not in ("done", "paused", "failed"):
            self.state.status = {0: "done", 130: "paused", -2: "paused"}.get(
                message.returncode, "failed"
            )
        if self.state.status == "failed":
            self.app.push_screen(
                ErrorModal("The training stopped with an error", message.error_line)
            )
        elif self.state.status == "done":
            self.notify(
                "press v to evaluate the trained model", title=f"run {self.state.run_id} done"
            )
        self._dirty = True
        self.paint()

    def paint(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
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

    def action_stop_or_back(self) -> None:
        stop_or_back(
            self,
            self.finished or self.state.status in ("done", "paused", "failed"),
            "Stop training? It stops at the next step, saves a checkpoint and "
            "is paused (ccapp train --resume).",
            self.job.cancel,
            yes="Stop",
            no="Keep training",
        )

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
