"""The live view of a running job: streaming continuations with corrections lit, Corr@k, progress.

Events arrive as messages from the job (a child process); they only update state here, and
the clock of ccapp.screens.live_base repaints every 100 ms, so the UI stays responsive
however fast the model writes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Header, ProgressBar, RichLog, Static

from ccapp.engines.events import (
    ContinuationDone,
    ErrorEvent,
    Event,
    Log,
    MetricsEvent,
    ModelLoading,
    RunFinished,
    RunStarted,
    Tokens,
    VerdictEvent,
)
from ccapp.engines.judges.heuristic import find_correction
from ccapp.screens.jobs import Job, JobEnded
from ccapp.screens.live_base import JobState, LiveJobScreen, duration
from ccapp.screens.widgets import (
    CorrChart,
    Palette,
    Series,
    continuation_text,
    fixed_columns,
    footer,
)
from ccapp.store import Store, runs
from ccapp.store import evals as rows_store

STREAMS_SHOWN = 6


@dataclass
class Stream:
    text: str = ""
    done: bool = False
    label: str | None = None
    span: tuple[int, int] | None = None
    relapse: bool = False


@dataclass
class LiveState(JobState):
    kind: str = ""
    model: str = ""
    judge: str = ""
    totals: dict[str, int] = field(default_factory=dict)
    paths: int = 1
    done_per_k: dict[int, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    streams: OrderedDict[tuple[int, int], Stream] = field(default_factory=OrderedDict)
    # Paths that have tokens but are not stored yet: a batch is stored whole, so on a CPU a
    # real model can write for a minute before the count of continuations moves.
    writing: set[tuple[int, int]] = field(default_factory=set)
    writing_since: float | None = None  # when the paths being written began (monotonic)


class LiveRunScreen(LiveJobScreen[LiveState]):
    NAME = "live"
    # Below 100 columns the chart would crowd the per-k table (its CIs say the same); below
    # 32 rows the status and the log shrink so that the streams stay in view.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    CSS_PATH = "live_run.tcss"
    BINDINGS = [
        Binding("ctrl+c", "stop_or_back", "Cancel", show=False, priority=True, id="live.ctrl_c"),
        Binding("o", "open_run", "Open run", id="live.open", tooltip="The finished run in History"),
    ]

    STOP_QUESTION = (
        "Cancel this run? It stops at the next step and is paused; you can resume it from History."
    )

    STATE = LiveState
    LOGGED = ()  # the log lines it writes say more (apply)

    def __init__(self, job: Job, title: str, db_path: Path):
        super().__init__(job, title, db_path)
        self.cells: dict[int, rows_store.CellInfo] = {}
        self._metrics_dirty = False
        self._store: Store | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="live-top"):
            with Vertical(id="live-status"):
                yield Static(self.title_text, id="live-title", markup=False)
                yield ProgressBar(id="live-progress", show_eta=False)
                yield Static("", id="live-rate")
                yield DataTable(id="live-per-k", cursor_type="none", zebra_stripes=True)
            yield CorrChart(id="live-chart")
        yield VerticalScroll(Static(id="live-streams-body"), id="live-streams")
        yield RichLog(id="live-log", max_lines=500, wrap=True, markup=False)
        yield from footer()

    def on_mount(self) -> None:
        table = self.query_one("#live-per-k", DataTable)
        fixed_columns(table, ("k", 5), ("done", 11), ("Corr@k", 7), ("95% CI", 16))
        self._store = Store.open(self.db_path)

    def on_unmount(self) -> None:
        if self._store is not None:
            self._store.close()

    # -- events in: update state only ------------------------------------------------------

    def apply(self, event: Event) -> None:
        s = self.state
        match event:
            case ModelLoading(phase=phase, detail=detail, done=done, total=total):
                shown = detail or ""
                if phase == "download" and total:
                    shown = f"{shown} {(done or 0) / 2**30:.2f} of {total / 2**30:.2f} GiB"
                self.log_line(f"model: {phase} {shown}")
            case RunStarted(kind=kind, config=config, totals=totals):
                s.kind, s.status = kind, "running"
                s.model, s.judge = config.get("model", ""), config.get("judge", "")
                s.paths = int(config.get("paths") or 1)
                s.totals = totals
                s.total = totals.get("continuations", 0)
                s.done = s.total - totals.get("todo", 0)
                if kind == "eval" and s.run_id is not None and s.done:
                    # a resume: the continuations stored before the pause count per k too
                    s.done_per_k = self._stored_per_k(s.run_id)
                before = f" ({s.done} stored before this start)" if s.done else ""
                self.log_line(f"run {s.run_id} started: {s.total} continuations{before}")
            case Tokens(deltas=deltas):
                if not s.writing:
                    s.writing_since = time.monotonic()
                for cell, path, delta in deltas:
                    s.writing.add((cell, path))
                    stream = self._stream(cell, path)
                    stream.text += delta
                    stream.span = find_correction(stream.text)  # lit the moment it appears
            case ContinuationDone(cell_id=cell, path=path, k=k, text=text, verdict=verdict):
                s.writing.discard((cell, path))
                stream = self._stream(cell, path)
                stream.text, stream.done = text, True
                stream.label, stream.span = verdict.label, verdict.span
                stream.relapse = verdict.relapse
                s.done_per_k[k] = s.done_per_k.get(k, 0) + 1
            case VerdictEvent(cell_id=cell, path=path, verdict=verdict):
                if (cell, path) in s.streams and verdict.judge == s.judge:
                    s.streams[(cell, path)].label = verdict.label
            case MetricsEvent(metrics=metrics):
                self._take_metrics(metrics)
            case RunFinished(status=status, metrics=metrics):
                self._take_metrics(metrics)
                s.status = status
            case Log(level=level, message=message):
                self.log_line(f"{level}: {message}")
            case ErrorEvent(message=message):
                self.log_line(f"error: {message}")

    def _stored_per_k(self, run_id: int) -> dict[int, int]:
        return {} if self._store is None else runs.continuations_per_k(self._store, run_id)

    def _take_metrics(self, metrics: dict[str, Any] | None) -> None:
        if metrics:
            self.state.metrics = metrics
            self._metrics_dirty = True

    def _stream(self, cell: int, path: int) -> Stream:
        streams = self.state.streams
        key = (cell, path)
        if key not in streams:
            streams[key] = Stream()
            while len(streams) > STREAMS_SHOWN * 4:
                streams.popitem(last=False)
        streams.move_to_end(key)
        return streams[key]

    def ended(self, message: JobEnded) -> None:
        s = self.state
        # the log's last line says how the job ended, never "cancelling…" or its start
        if s.status == "done":
            mean = (s.metrics or {}).get("corr_mean")
            said = f" · Corr_mean {mean:.3f}" if isinstance(mean, int | float) else ""
            self.log_line(f"run {s.run_id} done: {s.done} of {s.total} continuations{said}")
            self.notify(f"run {s.run_id}: done", title="Finished")
        elif s.status == "paused":
            self.log_line(
                f"run {s.run_id} paused at {s.done} of {s.total}: resume it from History (r) "
                f"or with ccapp {s.kind or 'eval'} --resume {s.run_id}"
            )
            self.notify(f"run {s.run_id} is paused; resume it from History (r)", title="Cancelled")
        else:
            self.log_line(f"error: {message.error_line}")

    def log_line(self, text: str) -> None:
        self.query_one("#live-log", RichLog).write(Text(text))

    def stored(self) -> int:
        """Continuations stored so far. A batch's are counted per k as they are stored,
        before the batch's progress event: the headline counts them too, so it is never
        behind the per-k table."""
        return max(self.state.done, sum(self.state.done_per_k.values()))

    # -- painting, on a timer ---------------------------------------------------------------

    def paint(self) -> None:
        s = self.state
        title = f"{s.kind or 'job'} run {s.run_id if s.run_id is not None else '…'}"
        if s.model:
            title += f" · {s.model}"
        if s.judge:
            title += f" · judge {s.judge}"
        self.query_one("#live-title", Static).update(Text(f"{title} · {s.status}"))
        bar = self.query_one("#live-progress", ProgressBar)
        writing = bool(s.writing) and not self.job_over
        stored = self.stored()
        # nothing stored yet, the first batch in flight: a pulsing bar, not a 0% that lies
        first_batch = writing and stored == 0
        bar.update(total=None if first_batch else max(s.total, 1), progress=stored)
        rate = f"{stored}/{s.total} continuations"
        if writing:
            rate += f" · {len(s.writing)} being written"
            waited = time.monotonic() - (s.writing_since or time.monotonic())
            if waited >= 10:  # a long batch (a real model on a CPU): how long it has taken
                rate += f" for {duration(waited)}"
        if s.rate:
            rate += f" · {s.rate:.1f}/s"
        if s.eta_s is not None and s.status == "running":  # a finished run has no ETA
            rate += f" · ETA {duration(s.eta_s)}"
        self.query_one("#live-rate", Static).update(rate)
        self._paint_per_k()
        self._paint_streams()
        if self._metrics_dirty:
            self._metrics_dirty = False
            if s.metrics.get("corr"):
                self.query_one("#live-chart", CorrChart).show(
                    [Series.from_metrics(s.metrics.get("judge", ""), s.metrics)]
                )

    def _paint_per_k(self) -> None:
        s = self.state
        table = self.query_one("#live-per-k", DataTable)
        table.clear()
        ks = sorted(set(s.done_per_k) | {int(k) for k in s.metrics.get("corr", {})})
        per_k_total = s.totals.get("requests", 0) * s.paths
        for k in ks:
            corr = s.metrics.get("corr", {}).get(str(k))
            ci = s.metrics.get("ci95", {}).get(str(k))
            done = s.done_per_k.get(k, 0)
            table.add_row(
                str(k),
                f"{done}/{per_k_total}" if per_k_total else str(done),
                f"{corr:.3f}" if corr is not None else "–",
                f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "–",
            )
        mean = s.metrics.get("corr_mean")
        if mean is not None:
            ci = s.metrics.get("ci95", {}).get("mean")
            table.add_row("mean", "", f"{mean:.3f}", f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "–")

    def _paint_streams(self) -> None:
        streams = list(self.state.streams.items())[-STREAMS_SHOWN:][::-1]
        self._fetch_cells([cell for (cell, _), _ in streams if cell not in self.cells])
        palette = Palette.from_theme(self.app.current_theme)
        blocks = []
        for (cell, path), stream in streams:
            info = self.cells.get(cell)
            header = (
                f"request {info.item_idx} · k={info.k} · path {path}"
                if info
                else f"cell {cell} · path {path}"
            )
            blocks.append(
                continuation_text(
                    info.prefill if info else "",
                    stream.text,
                    stream.span,
                    label=stream.label if stream.done or stream.label else None,
                    relapse=stream.relapse,
                    header=header,
                    palette=palette,
                )
            )
            blocks.append(Text(""))
        body = self.query_one("#live-streams-body", Static)
        body.update(Group(*blocks) if blocks else Text(self._no_streams(), style=palette.dim))

    def _no_streams(self) -> str:
        """What the streams pane says before (or without) any continuation."""
        if not self.job_over:
            return self.loading_line() or "Waiting for the first tokens…"
        if self.state.status == "failed":
            return "No continuation was written: the job failed (the log below says why)."
        return f"No continuation was written in this job: it ended {self.state.status}."

    def _fetch_cells(self, cell_ids: list[int]) -> None:
        if cell_ids and self._store is not None:
            self.cells.update(rows_store.cell_info(self._store, cell_ids))

    # -- actions ----------------------------------------------------------------------------

    def stop_question(self) -> str:
        """Cancelling says what it costs: the paths of the batch being written are dropped
        (a batch is stored whole, so that a resume samples it again exactly)."""
        writing = len(self.state.writing)
        if not writing:
            return self.STOP_QUESTION
        return (
            f"Cancel this run? The {writing} continuations being written now are dropped and "
            f"written again on resume; the {self.stored()} stored stay. The run is paused; "
            "you can resume it from History."
        )

    def stop_job(self) -> None:
        self.log_line("cancelling: the job stops at its next step…")
        self.job.cancel()
