"""The demo in the app: `ccapp demo` as a child, its five stages, the log, and the verdict.

The demo builds and trains a toy model, so it takes minutes; this screen shows which stage
is running and how far it got, then the before/after Corr@k table with the fluency check and
the plain verdict — the same numbers `ccapp demo` prints, and the same runs in History.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, RichLog, Static

from ccapp.screens.jobs import Job, JobEnded, JobEvent
from ccapp.screens.modals import ErrorModal, stop_or_back

STAGES = ("model", "eval before", "syn", "dpo", "eval after")


@dataclass
class DemoState:
    status: str = "starting"
    stage: str | None = None
    done: int = 0
    total: int = 0
    eta_s: float | None = None
    stages: dict[str, str] = field(default_factory=lambda: dict.fromkeys(STAGES, "waiting"))
    result: dict[str, Any] | None = None


class DemoScreen(Screen[None]):
    CSS_PATH = "demo.tcss"
    BINDINGS = [
        Binding(
            "escape",
            "stop_or_back",
            "Cancel / back",
            id="demo.cancel",
            tooltip="While running: stop the demo (finished runs stay in the store). After: back",
        ),
    ]

    def __init__(self, job: Job, db_path: Path):
        super().__init__()
        self.job, self.db_path = job, db_path
        self.state = DemoState()
        self.finished = False
        self._dirty = True

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="demo-status"):
            yield Static("", id="demo-title", markup=False)
            yield DataTable(id="demo-stages", cursor_type="none", show_cursor=False)
            yield ProgressBar(id="demo-progress", show_eta=False)
            yield Static("", id="demo-rate", markup=False)
        yield Static("", id="demo-result")
        yield RichLog(id="demo-log", max_lines=400, wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#demo-stages", DataTable)
        table.add_column("stage", key="stage", width=12)
        table.add_column("state", key="state", width=14)
        for stage in STAGES:
            table.add_row(stage, "waiting", key=stage)
        self.query_one("#demo-result", Static).display = False
        self.set_interval(0.25, self.paint)
        self.run_job()

    @work(exclusive=True, group="demo-job", exit_on_error=False)
    async def run_job(self) -> None:
        await self.job.run(self)

    @on(JobEvent)
    def take_event(self, message: JobEvent) -> None:
        e, s = message.data, self.state
        kind = e.get("event")
        if kind == "demo_stage":
            s.status = "running"
            if e.get("state") == "started":
                s.stage, s.done, s.total, s.eta_s = e["stage"], 0, 0, None
                s.stages[e["stage"]] = "running"
            else:
                s.stages[e["stage"]] = f"done in {e.get('seconds', 0):.0f}s"
        elif kind == "progress":
            s.done, s.total, s.eta_s = e["done"], e.get("total") or s.total, e.get("eta_s")
        elif kind == "demo_finished":
            s.result = e
        elif kind in ("log", "error", "warning"):
            self.query_one("#demo-log", RichLog).write(Text(str(e.get("message", ""))))
        self._dirty = True

    @on(JobEnded)
    def job_ended(self, message: JobEnded) -> None:
        self.finished = True
        self.state.status = {0: "done", 130: "cancelled", -2: "cancelled"}.get(
            message.returncode, "failed"
        )
        if self.state.status == "failed":
            self.app.push_screen(ErrorModal("The demo stopped with an error", message.error_line))
        self._dirty = True
        self.paint()

    def paint(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        s = self.state
        stage = f" · {s.stage}" if s.stage and s.status == "running" else ""
        self.query_one("#demo-title", Static).update(f"ccapp demo · {s.status}{stage}")
        table = self.query_one("#demo-stages", DataTable)
        for name, state in s.stages.items():
            table.update_cell(name, "state", state)
        self.query_one("#demo-progress", ProgressBar).update(total=max(s.total, 1), progress=s.done)
        line = f"{s.done}/{s.total}" if s.total else ""
        if s.eta_s is not None and s.status == "running":
            line += f" · ETA {int(s.eta_s)}s"
        self.query_one("#demo-rate", Static).update(line)
        if s.result is not None:
            panel = self.query_one("#demo-result", Static)
            panel.update(result_view(s.result))
            panel.display = True

    def action_stop_or_back(self) -> None:
        stop_or_back(
            self,
            self.finished,
            "Stop the demo? Its finished runs stay in the store.",
            self.job.cancel,
            yes="Stop",
            no="Keep going",
        )


def result_view(result: dict[str, Any]) -> Table:
    """Before/after Corr@k with intervals, fluency, the verdict and the toy-model note; every
    string from the run is passed as Text, so nothing in it is read as markup."""
    before, after = result.get("before", {}), result.get("after", {})
    table = Table("", "before [95% CI]", "after [95% CI]", title="Corr@k on held-out requests")

    def cell(metrics: dict[str, Any], key: str) -> str:
        value = metrics.get("corr_mean") if key == "mean" else metrics.get("corr", {}).get(key)
        ci = metrics.get("ci95", {}).get(key)
        if value is None:
            return "–"
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"

    for k in sorted({*before.get("corr", {}), *after.get("corr", {})}, key=int):
        table.add_row(f"k={k}", cell(before, k), cell(after, k))
    table.add_row("mean", cell(before, "mean"), cell(after, "mean"), style="bold")
    fb, fa = result.get("fluency_before", {}), result.get("fluency_after", {})
    for key in ("distinct2_per_continuation", "degenerate_share"):
        table.add_row(key, str(fb.get(key)), str(fa.get(key)))
    table.caption = Text(f"{result.get('verdict', '')}\n{result.get('note', '')}")
    return table
