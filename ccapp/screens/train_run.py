"""A train run's page: what was trained (method, model, the pairs and the syn run they came
from), how far (steps), its loss, margin and accuracy curves as the store has them (with the
held-out pairs' where the run had --eval-fraction), its checkpoints and where the model is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Header, Static
from textual_plotext import PlotextPlot

from ccapp.screens.run_page import RunPage
from ccapp.screens.train import Curves, ask_to_evaluate, draw_curves
from ccapp.screens.widgets import footer
from ccapp.store import Run, RunKind, Store, runs
from ccapp.store import train as train_store
from ccapp.store.train import TrainPoint


@dataclass
class TrainOverview(Message):
    run: Run
    lineage: list[Run]
    points: list[TrainPoint]
    checkpoints: list[str]  # checkpoint folder names, oldest first


def checkpoints_in(output: str | None) -> list[str]:
    """The checkpoints a run left in OUTPUT/checkpoints (checkpoint-STEP), by step."""
    if not output:
        return []
    folder = Path(output) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")]
    return sorted(found, key=lambda name: int(name.rsplit("-", 1)[-1] or 0))


def _number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "–"


def facts_text(run: Run, points: list[TrainPoint], checkpoints: list[str]) -> Text:
    """Method, model, pairs and their syn run, steps, the last scores, checkpoints, output."""
    config, metrics = run.config, run.metrics or {}
    text = Text()
    text.append(f"method {config.get('method', '–')}", style="bold")
    text.append(f" · model {run.model}")
    pairs = metrics.get("pairs") or config.get("pairs_rows")
    source = f"syn run {run.parent_id} (s opens it)" if run.parent_id else str(config.get("pairs"))
    text.append(f"\npairs {pairs if pairs is not None else '–'} from {source}")
    steps = metrics.get("steps", points[-1].step if points else 0)
    planned = config.get("max_steps")
    text.append(f"\nsteps {steps}" + (f" of max {planned}" if planned else ""))
    if points:
        last = points[-1]
        text.append(
            f" · loss {_number(last.loss)} · margin {_number(last.reward_margin, 3)}"
            f" · accuracy {_number(last.reward_accuracy, 2)}"
        )
    held = [p for p in points if p.eval_loss is not None]
    if held:
        text.append(
            f"\nheld-out pairs ({metrics.get('eval_pairs', '–')}): eval loss "
            f"{_number(held[-1].eval_loss)} · eval accuracy {_number(held[-1].eval_reward_accuracy, 2)}"
        )
    shown = ", ".join(checkpoints[-4:]) if checkpoints else "none"
    more = f" (of {len(checkpoints)})" if len(checkpoints) > 4 else ""
    text.append(f"\ncheckpoints {shown}{more}")
    output = metrics.get("output") or config.get("output")
    text.append("\nthe trained model: ", style="bold")
    text.append(str(output or "–"))
    if run.status.value == "done" and output:
        text.append("  (v evaluates it)", style="dim")
    return text


class TrainRunScreen(RunPage):
    KIND = RunKind.TRAIN
    OWN_KEYS = (
        ("s", "open_pairs", "Syn run", "The syn run whose pairs it trained on"),
        ("v", "evaluate", "Evaluate it", "Evaluate the trained model like the last eval run"),
    )

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="train-run"):
            yield Static("Loading…", id="train-run-summary")
            yield Static("", id="train-run-facts")
            with Horizontal(id="train-run-charts"):
                yield PlotextPlot(id="train-run-loss")
                yield PlotextPlot(id="train-run-margin")
        yield from footer()

    def on_mount(self) -> None:
        for chart in self.query(PlotextPlot):
            chart.can_focus = False

    def overview(self, store: Store, run: Run) -> TrainOverview:
        output = (run.metrics or {}).get("output") or run.config.get("output")
        return TrainOverview(
            run,
            runs.lineage(store, run.id),
            train_store.points(store, run.id),
            checkpoints_in(output),
        )

    @on(TrainOverview)
    def show_overview(self, message: TrainOverview) -> None:
        self.show_run(message.run, message.lineage)
        self.query_one("#train-run-facts", Static).update(
            facts_text(message.run, message.points, message.checkpoints)
        )
        points = message.points
        trained = [p for p in points if p.loss is not None]
        held = [p for p in points if p.eval_loss is not None]
        if trained or held:
            draw_curves(
                self.query_one("#train-run-loss", PlotextPlot),
                self.query_one("#train-run-margin", PlotextPlot),
                Curves(
                    [p.step for p in trained],
                    [p.loss or 0.0 for p in trained],
                    [p.reward_margin or 0.0 for p in trained],
                    [p.reward_accuracy or 0.0 for p in trained],
                ),
                Curves(
                    [p.step for p in held],
                    [p.eval_loss or 0.0 for p in held],
                    [],
                    [p.eval_reward_accuracy or 0.0 for p in held],
                ),
            )

    def action_open_pairs(self) -> None:
        if self.run is None or self.run.parent_id is None:
            self.notify("This run trained on pairs from a folder, not from a syn run.")
            return
        from ccapp.screens.run_page import run_page

        self.app.push_screen(run_page(self.run.parent_id, self.db_path, RunKind.SYN))

    def action_evaluate(self) -> None:
        run = self.run
        output = run and ((run.metrics or {}).get("output") or run.config.get("output"))
        if run is None or run.status.value != "done" or not output:
            self.notify("Evaluate once the training is done.")
            return
        ask_to_evaluate(self, self.db_path, str(output), run.id)
