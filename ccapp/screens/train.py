"""DPO training in the app: a form that becomes a `ccapp train …` child, and its live curves.

The live view charts the loss and the reward margin and accuracy as the steps come in, with
step progress and ETA; when the run is done, `v` evaluates the trained model with the
settings of the last evaluation in the store, closing the loop eval → syn → train → eval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, ProgressBar, RichLog, Static
from textual_plotext import PlotextPlot

from ccapp.engines.c2eval.config import EvalConfig
from ccapp.engines.dpo.config import TrainConfig
from ccapp.engines.events import (
    Event,
    MetricsEvent,
    RunFinished,
    RunStarted,
    TrainLog,
)
from ccapp.engines.generation.backend import LOADING, SERVER
from ccapp.engines.options import Declared, declared
from ccapp.errors import UserError
from ccapp.screens.base import services_of
from ccapp.screens.job_form import JobFormScreen
from ccapp.screens.jobs import JobEnded
from ccapp.screens.live_base import JobState, LiveJobScreen, duration
from ccapp.screens.modals import ChoiceModal, ConfirmModal
from ccapp.screens.option_form import OptionTexts, form_command, read_values
from ccapp.screens.widgets import footer, tail
from ccapp.store import Run, RunKind, Store, runs
from ccapp.store import syn as syn_store
from ccapp.store.train import EvalCost, eval_cost


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
    return form_command("train", v.config, values), problems


def eval_to_repeat(store: Store, trained: int | None) -> Run | None:
    """The eval whose settings evaluating train run `trained` repeats: the one its pairs were
    drawn from (its lineage: eval → syn → train), else the newest eval of the model it
    trained — so the two evals pair and the Δ means something. None when there is neither:
    another model's eval would neither pair nor say how long this one takes."""
    evals = runs.list_runs(store, kind=RunKind.EVAL)
    if trained is None or not evals:
        return evals[0] if evals else None
    try:
        chain = runs.lineage(store, trained)
    except UserError:  # not (or no longer) in this store: the newest eval is all there is
        return evals[0]
    at = next(i for i, r in enumerate(chain) if r.id == trained)
    upstream = [r for r in chain[:at] if r.kind is RunKind.EVAL]  # its ancestors
    if upstream:
        return upstream[-1]
    base = chain[at].model
    return next((r for r in evals if base and r.model == base), None)


@dataclass(frozen=True)
class EvalPlan:
    """What `v` would run: the `ccapp eval` arguments, what the eval they copy cost (the
    estimate: as many continuations, about as long on a same-sized model), and the eval of
    this model with these settings that the store has already (None: none)."""

    args: list[str]
    cost: EvalCost
    done_before: Run | None = None


def evaluation_like_last(store: Store, model: str, trained: int | None = None) -> EvalPlan | None:
    last = eval_to_repeat(store, trained)
    if last is None:
        return None
    stored = last.config
    repeated = {
        d.name: stored[d.name]
        for d in declared(EvalConfig)
        if d.option.decides_results
        and d.option.group not in (LOADING, SERVER)
        and d.name != "model"
        and d.name in stored
    }
    done_before = next(
        (
            r
            for r in runs.list_runs(store, kind=RunKind.EVAL)
            if r.model == model and all(r.config.get(k) == v for k, v in repeated.items())
        ),
        None,
    )
    args = form_command("eval", EvalConfig, {"model": model} | repeated)
    return EvalPlan(args, eval_cost(store, last.id), done_before)


def evaluate_question(plan: EvalPlan) -> str:
    """What `v` asks before starting: the command it runs, how long it will take, and the
    eval of this model with these settings already made, if there is one."""
    cost = plan.cost
    made = f"{cost.continuations} continuations"
    if cost.seconds is not None:
        took = f"about {duration(cost.seconds)} (eval run {cost.run_id} made {made} in that time)"
    else:
        took = f"unknown: eval run {cost.run_id}, whose settings it copies, has not finished"
    question = (
        f"Evaluate the trained model with the settings of eval run {cost.run_id}?\n\n"
        f"ccapp {' '.join(plan.args)}\n\n{made} · time: {took}"
    )
    before = plan.done_before
    if before is not None:
        score = f", Corr_mean {before.corr_mean:.3f}" if before.corr_mean is not None else ""
        question += (
            f"\n\nEval run {before.id} has evaluated this model with these settings already "
            f"({runs.status_text(before)}{score})."
        )
    return question


def ask_to_evaluate(
    screen: Screen[Any], db_path: Path, model: str, trained: int | None = None
) -> None:
    """`v`: show what evaluating the trained model runs and how long it will take, and start
    it (on the eval live screen) only when the user says yes. The eval to copy is looked up
    in a worker (its cost reads the store's timings); a failure reaches the screen's modal."""

    def plan() -> None:
        with Store.open(db_path) as store:
            planned = evaluation_like_last(store, model, trained)
        screen.app.call_from_thread(_confirm_evaluation, screen, db_path, planned)

    screen.run_worker(
        plan,
        thread=True,
        exclusive=True,
        group="evaluate",
        name="Planning the evaluation",
        exit_on_error=False,
    )


def _confirm_evaluation(screen: Screen[Any], db_path: Path, plan: EvalPlan | None) -> None:
    if plan is None:
        screen.notify(
            "No eval run of the model this run trained to copy the settings of (its pairs came "
            "from no eval either): F2 evaluates the trained model with settings you choose.",
            severity="warning",
        )
        return

    def start() -> None:
        from ccapp.screens.jobs import ChildJob
        from ccapp.screens.live_run import LiveRunScreen

        job = ChildJob([*plan.args, "--db", str(db_path)])
        live = LiveRunScreen(job, f"ccapp {' '.join(plan.args)}", db_path)
        services_of(screen.app).launch(live)

    before = plan.done_before
    if before is None:
        screen.app.push_screen(
            ConfirmModal(evaluate_question(plan), yes="Evaluate", no="Not now"),
            lambda yes: start() if yes else None,
        )
        return

    def choose(choice: str | None) -> None:
        if choice == "y":
            start()
        elif choice == "o":
            from ccapp.screens.run_page import page_of

            screen.app.push_screen(page_of(before.id, db_path))

    screen.app.push_screen(
        ChoiceModal(
            evaluate_question(plan),
            [("o", f"Open run {before.id}"), ("y", "Evaluate again")],
            cancel="Not now",
        ),
        choose,
    )


@dataclass(frozen=True)
class Curves:
    """Points of the training curves: the steps and each value at them (empty: not shown)."""

    steps: Sequence[int]
    loss: Sequence[float]
    margin: Sequence[float]
    accuracy: Sequence[float]


def draw_curves(
    loss_plot: PlotextPlot, margin_plot: PlotextPlot, train: Curves, held: Curves
) -> None:
    """The DPO loss in one chart, the reward margin and accuracy in the other; the held-out
    pairs' loss and accuracy (--eval-fraction) beside the training batches' when there are."""
    # titles short enough for a chart half of an 80-column screen: plotext drops one that
    # does not fit
    ticks = [float(t) for t in step_ticks([*train.steps, *held.steps])]
    loss_plot.plt.clear_data()
    loss_plot.plt.title("DPO loss" + (" · eval (magenta)" if held.steps else ""))
    loss_plot.plt.xticks(ticks)
    loss_plot.plt.plot(list(train.steps), list(train.loss), marker="braille", color="cyan")
    if held.steps:
        loss_plot.plt.plot(list(held.steps), list(held.loss), marker="braille", color="magenta")
    loss_plot.refresh()
    margin_plot.plt.clear_data()
    margin_plot.plt.title("margin (cyan) · acc (orange)")
    margin_plot.plt.xticks(ticks)
    margin_plot.plt.plot(list(train.steps), list(train.margin), marker="braille", color="cyan")
    margin_plot.plt.plot(
        list(train.steps), list(train.accuracy), marker="braille", color="orange", yside="right"
    )
    if held.steps:
        margin_plot.plt.plot(
            list(held.steps), list(held.accuracy), marker="braille", color="magenta", yside="right"
        )
    margin_plot.refresh()


def step_ticks(steps: Sequence[int], most: int = 6) -> list[int]:
    """Whole steps to label the x axis with (plotext's own fall between steps: 2.5, 7.5)."""
    if not steps:
        return []
    low, high = min(steps), max(steps)
    stride = max(1, -(-(high - low) // (most - 1)))
    return list(range(low, high + 1, stride))


@dataclass
class TrainState(JobState):
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    margin: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    # The held-out pairs' scores (--eval-fraction), at the steps they were scored.
    eval_steps: list[int] = field(default_factory=list)
    eval_loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    output: str | None = None


class TrainLiveScreen(LiveJobScreen[TrainState]):
    NAME = "train"
    STOP_TIP = "While running: stop at the next step, save a checkpoint (paused). After: back"
    BINDINGS = [
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

    STATE = TrainState

    def compose(self) -> ComposeResult:
        yield from self.status_block(Static("", id="train-rate", markup=False))
        with Horizontal(id="train-charts"):
            yield PlotextPlot(id="train-loss")
            yield PlotextPlot(id="train-margin")
        yield RichLog(id="train-log", max_lines=300, wrap=True, markup=False)
        yield from footer()

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
            case MetricsEvent(metrics={"step": int() as step, "eval_loss": float() as loss}):
                s.eval_steps.append(step)
                s.eval_loss.append(loss)
                s.eval_accuracy.append(event.metrics.get("eval_reward_accuracy") or 0.0)
            case RunFinished(status=status, metrics=metrics):
                s.status = status
                s.output = (metrics or {}).get("output")

    def ended(self, message: JobEnded) -> None:
        if self.state.status == "done":
            self.notify(
                "press v to evaluate the trained model", title=f"run {self.state.run_id} done"
            )

    def paint(self) -> None:
        s = self.state
        self.query_one("#train-title", Static).update(f"train run {s.run_id or '…'} · {s.status}")
        self.query_one("#train-progress", ProgressBar).update(
            total=max(s.total, 1), progress=s.done
        )
        line = f"step {s.done}/{s.total}"
        if s.rate:
            line += f" · {s.rate:.2f} steps/s"
        if s.eta_s is not None and s.status == "running":
            line += f" · ETA {int(s.eta_s)}s"
        if s.loss:
            line += f" · loss {s.loss[-1]:.4f} · margin {s.margin[-1]:.3f} · accuracy {s.accuracy[-1]:.2f}"
        if s.eval_loss:
            line += f" · eval loss {s.eval_loss[-1]:.4f} · eval accuracy {s.eval_accuracy[-1]:.2f}"
        if s.status == "done" and s.output:
            line += f"\nthe trained model is in {s.output} · v evaluates it"
        self.query_one("#train-rate", Static).update(line)
        if s.steps:
            draw_curves(
                self.query_one("#train-loss", PlotextPlot),
                self.query_one("#train-margin", PlotextPlot),
                Curves(s.steps, s.loss, s.margin, s.accuracy),
                Curves(s.eval_steps, s.eval_loss, [], s.eval_accuracy),
            )

    def action_evaluate(self) -> None:
        if self.state.status != "done" or not self.state.output:
            self.notify("Evaluate once the training is done.")
            return
        ask_to_evaluate(self, self.db_path, self.state.output, self.state.run_id)


class TrainFormScreen(JobFormScreen[TrainValues]):
    VALUES = TrainValues
    LAUNCH_TIP = "Start DPO training"
    FORM_TITLE = "DPO training on C2-Syn pairs"
    # The form's rows, top to bottom (rows of fields TrainConfig declares).
    ROWS = ("pairs", "model", "method", "dpo", "steps", "batches", "output")
    ARGS = staticmethod(train_args)
    LIVE_SCREEN = TrainLiveScreen
    ID_PREFIX = "train-"
    # The newest syn run's pairs are offered afresh, and a new run gets its own folder.
    FORGETS = ("pairs", "output")
    latest_syn: syn_store.DoneSyn | None = None  # the newest finished syn run, once read

    def hint(self, d: Declared) -> str:
        if d.name == "pairs":  # filled in on mount once the store is read
            return "the newest finished syn run is offered here"
        return super().hint(d)

    def on_mount(self) -> None:
        self.find_latest_pairs(self.services.db_path)

    @work(thread=True, exclusive=True, name="Reading the syn runs", exit_on_error=False)
    def find_latest_pairs(self, db_path: Path) -> None:
        with Store.open(db_path) as store:
            latest = syn_store.latest_done_run(store)
        self.app.call_from_thread(self.offer_pairs, latest)

    def offer_pairs(self, latest: syn_store.DoneSyn | None) -> None:
        """Offer the newest finished syn run's pairs (the run that just finished) when the
        pairs field is empty, saying whose completions they hold: pairs another model wrote
        teach this one that model's corrections."""
        hint = self.query_one(f"#{self.ID_PREFIX}field-pairs .hint", Static)
        if latest is None:
            hint.update("no finished syn run yet: synthesize pairs first (F4)")
            return
        field = self.query_one(f"#{self.widget_id('pairs')}", Input)
        if not field.value.strip():
            field.value = str(latest.run_id)
        self.latest_syn = latest
        self.say_whose_pairs()

    @on(Input.Changed)
    def say_whose_pairs(self) -> None:
        latest = self.latest_syn
        if latest is None:
            return
        hint = self.query_one(f"#{self.ID_PREFIX}field-pairs .hint", Static)
        line = f"syn run {latest.run_id}: the newest finished, {latest.pairs} pairs by {tail(latest.model, 30)}"
        model = self.query_one(f"#{self.widget_id('model')}", Input).value.strip()
        offered = self.query_one(f"#{self.widget_id('pairs')}", Input).value.strip()
        if offered == str(latest.run_id) and model and model != latest.model:
            line += f" (not the Model to train, {tail(model, 20)})"
        hint.update(line)
