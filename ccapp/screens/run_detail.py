"""One run: settings, Corr@k per judge, a continuation browser, and what can be done with it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Select, Static, Switch

from ccapp.engines.c2eval.config import EvalConfig
from ccapp.engines.c2syn.config import SynConfig
from ccapp.engines.dpo.config import TrainConfig
from ccapp.engines.options import shown_settings
from ccapp.errors import UserError
from ccapp.screens.base import AppScreen, failure_line
from ccapp.screens.modals import ConfirmModal, ErrorModal, PromptModal
from ccapp.screens.widgets import (
    CorrChart,
    Palette,
    Series,
    continuation_text,
    fill_corr_table,
    fixed_columns,
)
from ccapp.store import Run, RunKind, Store, runs
from ccapp.store import evals as rows_store
from ccapp.store.records import Continuation

PAGE = 100
# The settings line of a run: what its job's config declares shown (ccapp.engines.options),
# then where its model and data resolved to.
PROVENANCE = ("model_source", "data_location")
SHOWN_SETTINGS = {
    RunKind.EVAL: shown_settings(EvalConfig) + PROVENANCE,
    RunKind.SYN: shown_settings(SynConfig) + PROVENANCE,
    RunKind.TRAIN: shown_settings(TrainConfig) + PROVENANCE,
}


@dataclass
class Overview(Message):
    run: Run
    metrics: dict[str, dict[str, Any]]  # by judge
    usage: list[rows_store.JudgeUsage]
    lineage: list[Run]


@dataclass
class Page(Message):
    rows: list[Continuation]
    total: int
    flt: rows_store.BrowseFilter
    offset: int


@dataclass
class One(Message):
    chosen: Continuation
    cell: Any  # the continuation's cell (prefill, rendered prompt), or None


class RunDetailScreen(AppScreen[None]):
    CSS_PATH = "run_detail.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="run.back"),
        Binding("r", "resume", "Resume", id="run.resume", tooltip="Finish a paused or failed run"),
        Binding(
            "j",
            "rejudge",
            "Re-judge",
            id="run.rejudge",
            tooltip="Judge the stored continuations again",
        ),
        Binding("c", "compare", "Compare", id="run.compare", tooltip="Corr@k beside another run's"),
        Binding("x", "export", "Export", id="run.export", tooltip="Write the JSON report"),
        Binding(
            "d", "delete", "Delete", id="run.delete", tooltip="Delete the run and all it produced"
        ),
        Binding(
            "p",
            "toggle_prompt",
            "Prompt",
            id="run.prompt",
            tooltip="Show the exact prompt the model saw",
        ),
        Binding("right_square_bracket", "page(1)", "Next page", id="run.next"),
        Binding("left_square_bracket", "page(-1)", "Prev page", id="run.prev"),
    ]

    def __init__(self, run_id: int, db_path: Path):
        super().__init__()
        self.run_id = run_id
        self.db_path = db_path
        self.run: Run | None = None
        self.metrics: dict[str, dict[str, Any]] = {}
        self.page_offset = 0
        self.page_total: int | None = None  # known once a page has loaded
        self.page_wanted: tuple[rows_store.BrowseFilter, int] | None = None
        self.page_rows: list[Continuation] = []
        self.one_wanted: int | None = None  # the continuation whose text is being loaded
        self.show_prompt = False

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static("Loading…", id="detail-summary")
            with Horizontal(id="detail-results"):
                yield DataTable(id="detail-per-k", cursor_type="none", zebra_stripes=True)
                yield CorrChart(id="detail-chart")
            yield Static("", id="detail-usage", markup=False)
            with Horizontal(id="detail-filters"):
                yield Select([], prompt="all k", id="filter-k")
                yield Select(
                    [("heuristic", "heuristic")],
                    value="heuristic",
                    id="filter-judge",
                    allow_blank=False,
                )
                yield Select(
                    [
                        ("any verdict", "any"),
                        ("corrected", "yes"),
                        ("not corrected", "no"),
                        ("unparsed", "unparsed"),
                        ("error", "error"),
                    ],
                    value="any",
                    id="filter-label",
                    allow_blank=False,
                )
                with Vertical(classes="switch"):
                    yield Static("disagrees with heuristic")
                    yield Switch(False, id="filter-disagree")
            yield Static("", id="detail-page", markup=False)
            yield DataTable(id="detail-rows", cursor_type="row", zebra_stripes=True)
            yield Static("", id="detail-one")
        yield Footer()

    def on_mount(self) -> None:
        fixed_columns(
            self.query_one("#detail-rows", DataTable),
            ("id", 6),
            ("request", 7),
            ("k", 4),
            ("path", 4),
            ("verdicts", 36),
            ("text", 56),
        )
        self.load_overview(self.db_path, self.run_id)

    # -- loading ------------------------------------------------------------------------------
    # Worker threads get every value they need as arguments (widgets are read here, on the UI
    # thread), open their own store connection and only post messages back. A failure shows
    # as a modal (AppScreen) and leaves what is on screen as it was.

    @work(
        thread=True, exclusive=True, group="overview", name="Reading the run", exit_on_error=False
    )
    def load_overview(self, db_path: Path, run_id: int) -> None:
        from ccapp.engines.c2eval.report import run_metrics

        with Store.open(db_path) as store:
            run = runs.get_run(store, run_id)
            judges = rows_store.judges_of(store, run.id) if run.kind is RunKind.EVAL else []
            metrics = {judge: run_metrics(store, run, judge) for judge in judges}
            usage = rows_store.usage(store, run.id)
            chain = runs.lineage(store, run.id)
        self.post_message(Overview(run, metrics, usage, chain))

    @on(Overview)
    def show_overview(self, message: Overview) -> None:
        self.run, self.metrics = message.run, message.metrics
        run = message.run
        lines = Text()
        lines.append(f"run {run.id} · {run.kind.value} · {run.status.value}\n", style="bold")
        lines.append(f"model {run.model} · data {run.data} · judge {run.judge or '–'}\n")
        lines.append(
            f"created {run.created_at} · finished {run.finished_at or '–'}"
            f" · parent {run.parent_id or '–'}\n"
        )
        if len(message.lineage) > 1:
            lines.append("lineage  ")
            for index, link in enumerate(message.lineage):
                if index:
                    lines.append(" → ")
                label = f"{link.kind.value} {link.id}"
                if link.corr_mean is not None:
                    label += f" (Corr_mean {link.corr_mean:.3f})"
                lines.append(label, style="bold" if link.id == run.id else "")
            lines.append("\n")
        settings = " · ".join(
            f"{k} {_show(run.config[k])}"
            for k in SHOWN_SETTINGS.get(run.kind, ())
            if k in run.config
        )
        lines.append(settings, style="dim")
        if run.error:
            lines.append(f"\n{run.error}", style="bold red")
        self.query_one("#detail-summary", Static).update(lines)
        judges = list(self.metrics)
        fill_corr_table(self.query_one("#detail-per-k", DataTable), list(self.metrics.items()))
        chart = self.query_one("#detail-chart", CorrChart)
        chart.show([Series.from_metrics(j, m) for j, m in self.metrics.items()])
        usage = message.usage
        self.query_one("#detail-usage", Static).update(
            " · ".join(
                f"{u.judge}: {u.calls} calls, {u.cached} cached, {u.prompt_tokens + u.completion_tokens} tokens"
                + (f", ~${u.cost_usd:.4f}" if u.cost_usd is not None else "")
                for u in usage
            )
        )
        ks = sorted({int(k) for m in self.metrics.values() for k in m.get("n", {})})
        self.query_one("#filter-k", Select).set_options([(f"k = {k}", k) for k in ks])
        judge_select = self.query_one("#filter-judge", Select)
        if judges:
            judge_select.set_options([(j, j) for j in judges])
            judge_select.value = run.judge if run.judge in judges else judges[0]
        self.reload_page()

    def current_filter(self) -> rows_store.BrowseFilter:
        k = self.query_one("#filter-k", Select).value
        judge = self.query_one("#filter-judge", Select).value
        label = self.query_one("#filter-label", Select).value
        judge_name = judge if isinstance(judge, str) else None
        disagree = self.query_one("#filter-disagree", Switch).value and judge_name not in (
            None,
            "heuristic",
        )
        return rows_store.BrowseFilter(
            k=k if isinstance(k, int) else None,
            judge=judge_name,
            label=label if isinstance(label, str) and label != "any" else None,
            disagree=("heuristic", judge_name) if disagree and judge_name else None,
        )

    def reload_page(self) -> None:
        """Load the page at `page_offset` under the filters shown now."""
        flt = self.current_filter()
        self.page_wanted = (flt, self.page_offset)
        self.load_page(self.db_path, self.run_id, flt, self.page_offset)

    @work(
        thread=True,
        exclusive=True,
        group="page",
        name="Reading the continuations",
        exit_on_error=False,
    )
    def load_page(
        self, db_path: Path, run_id: int, flt: rows_store.BrowseFilter, offset: int
    ) -> None:
        with Store.open(db_path) as store:
            rows, total = rows_store.browse(store, run_id, flt, limit=PAGE, offset=offset)
        self.post_message(Page(rows, total, flt, offset))

    @on(Page)
    def show_page(self, message: Page) -> None:
        if (message.flt, message.offset) != self.page_wanted:
            return  # an older request's thread finished after a newer one was started
        self.page_rows, self.page_total = message.rows, message.total
        table = self.query_one("#detail-rows", DataTable)
        table.clear()
        for c in message.rows:
            verdicts = " ".join(f"{_short(j)}:{v.label}" for j, v in sorted(c.verdicts.items()))
            preview = c.text.replace("\n", " ")[:70]
            table.add_row(
                str(c.id),
                str(c.item_idx),
                str(c.k),
                str(c.path),
                verdicts,
                Text(preview),
                key=str(c.id),
            )
        last = min(message.offset + PAGE, message.total)
        self.query_one("#detail-page", Static).update(
            f"continuations {message.offset + 1 if message.total else 0}–{last} of {message.total}"
            " ([ and ] turn pages)"
        )
        self.show_selected()

    @on(Select.Changed)
    @on(Switch.Changed)
    def filters_changed(self) -> None:
        if self.run is not None:
            self.page_offset = 0
            self.reload_page()

    def action_page(self, step: int) -> None:
        offset = max(0, self.page_offset + step * PAGE)
        if self.page_total is not None and offset >= self.page_total:
            return  # already on the last page
        self.page_offset = offset
        self.reload_page()

    @on(DataTable.RowHighlighted, "#detail-rows")
    def show_selected(self) -> None:
        table = self.query_one("#detail-rows", DataTable)
        view = self.query_one("#detail-one", Static)
        if not self.page_rows or table.row_count == 0:
            self.one_wanted = None
            view.update("")
            return
        chosen = self.page_rows[min(table.cursor_row, len(self.page_rows) - 1)]
        self.one_wanted = chosen.id
        self.load_one(self.db_path, chosen)

    @work(
        thread=True,
        exclusive=True,
        group="one",
        name="Reading the continuation",
        exit_on_error=False,
    )
    def load_one(self, db_path: Path, chosen: Continuation) -> None:
        with Store.open(db_path) as store:
            cell = rows_store.cell(store, chosen.cell_id)
        self.post_message(One(chosen, cell))

    @on(One)
    def show_continuation(self, message: One) -> None:
        chosen, cell = message.chosen, message.cell
        if chosen.id != self.one_wanted:
            return  # the cursor moved on while this one was read
        judge = self.query_one("#filter-judge", Select).value
        verdict = chosen.verdicts.get(str(judge)) or chosen.verdicts.get("heuristic")
        palette = Palette.from_theme(self.app.current_theme)
        text = continuation_text(
            cell.prefill if cell else "",
            chosen.text,
            verdict.span if verdict else None,
            label=verdict.label if verdict else None,
            relapse=bool(verdict and verdict.relapse),
            header=f"continuation {chosen.id} · request {chosen.item_idx} · k={chosen.k} · path {chosen.path}",
            palette=palette,
        )
        for name, v in sorted(chosen.verdicts.items()):
            score = f" score {v.score:.3f}" if v.score is not None else ""
            raw = f" answer {v.raw!r}" if v.raw else ""
            text.append(f"\n{name}: {v.label}{score}{raw}", style=palette.dim)
        if self.show_prompt and cell is not None:
            text.append("\n\nrendered prompt (what the model saw):\n", style="bold")
            text.append(cell.rendered_prompt)
        self.query_one("#detail-one", Static).update(text)

    def action_toggle_prompt(self) -> None:
        self.show_prompt = not self.show_prompt
        self.show_selected()

    # -- actions --------------------------------------------------------------------------

    def action_resume(self) -> None:
        if self.run is None or self.run.kind is not RunKind.EVAL or not self.run.status.resumable:
            self.notify("Only a paused, failed or interrupted eval run can be resumed.")
            return
        self._start_job(["eval", "--resume", str(self.run_id)], f"resume run {self.run_id}")

    def action_rejudge(self) -> None:
        if self.run is None or self.run.kind is not RunKind.EVAL:
            return

        def chosen(spec: str | None) -> None:
            if not spec:
                return
            from ccapp.engines.judges.registry import parse_judge_spec

            try:
                canonical = parse_judge_spec(spec).canonical
            except UserError as exc:
                self.app.push_screen(ErrorModal("Not a judge", exc.message))
                return
            self._start_job(
                ["judge", str(self.run_id), "--judge", canonical], f"judge run {self.run_id}"
            )

        self.app.push_screen(
            PromptModal(
                "Judge the stored continuations with (heuristic, gpt-4o, openai:NAME@URL, hf:PATH):",
                placeholder="openai:gpt-4o",
            ),
            chosen,
        )

    def _start_job(self, args: list[str], title: str) -> None:
        from ccapp.screens.jobs import ChildJob
        from ccapp.screens.live_run import LiveRunScreen

        self.app.push_screen(
            LiveRunScreen(ChildJob([*args, "--db", str(self.db_path)]), title, self.db_path)
        )

    def action_compare(self) -> None:
        def chosen(value: str | None) -> None:
            if not value:
                return
            if not value.strip().isdigit():
                self.app.push_screen(ErrorModal("Not a run id", f"'{value}' is not a run number."))
                return
            from ccapp.screens.compare import CompareScreen

            self.app.push_screen(CompareScreen(self.run_id, int(value), self.db_path))

        self.app.push_screen(
            PromptModal(f"Compare run {self.run_id} with run:", placeholder="run id"), chosen
        )

    def action_export(self) -> None:
        from ccapp.engines.c2eval.report import default_report_path

        def chosen(value: str | None) -> None:
            if value:
                self.export_to(self.db_path, self.run_id, Path(value), force=False)

        self.app.push_screen(
            PromptModal("Write the JSON report to:", str(default_report_path(self.run_id))), chosen
        )

    @work(thread=True, exclusive=True, group="export", name="Export", exit_on_error=False)
    def export_to(self, db_path: Path, run_id: int, path: Path, *, force: bool) -> None:
        from ccapp.engines.c2eval.report import build_report, report_text, write_new_file

        if path.expanduser().exists() and not force:
            self.app.call_from_thread(self._ask_overwrite, path)
            return
        with Store.open(db_path) as store:
            text = report_text(build_report(store, run_id))
        write_new_file(path, text, force=force)
        self.app.call_from_thread(self.notify, f"report written to {path}", title="Exported")

    def _ask_overwrite(self, path: Path) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.export_to(self.db_path, self.run_id, path, force=True)

        self.app.push_screen(
            ConfirmModal(f"{path} exists. Overwrite it?", yes="Overwrite", no="Keep it"), answer
        )

    def action_delete(self) -> None:
        def answer(yes: bool | None) -> None:
            if not yes:
                return
            try:
                with Store.open(self.db_path) as store:
                    runs.delete_run(store, self.run_id)
            except (UserError, sqlite3.Error, OSError) as exc:  # rolled back: nothing deleted
                self.app.push_screen(ErrorModal("Delete failed", failure_line(exc, self.db_path)))
                return
            self.notify(f"run {self.run_id} deleted")
            self.app.pop_screen()

        self.app.push_screen(
            ConfirmModal(
                f"Delete run {self.run_id} and everything it produced? This cannot be undone.",
                yes="Delete",
                no="Keep",
            ),
            answer,
        )


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return json.dumps(value) if isinstance(value, (dict, type(None))) else str(value)


def _short(judge: str) -> str:
    """A judge's name short enough for a table cell."""
    if judge.startswith("openai:"):
        return judge.removeprefix("openai:").split("@")[0][-18:]
    if judge.startswith("hf:"):
        return "hf:" + judge.removeprefix("hf:").rstrip("/").split("/")[-1][-15:]
    return judge
