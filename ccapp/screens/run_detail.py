"""An eval run's page: settings, Corr@k per judge, a continuation browser, and what can be
done with it. Syn and train runs have pages of their own (run_page.run_page); this screen,
opened on one, hands over to its page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Header, Select, Static, Switch
from textual.widgets.data_table import ColumnKey

from ccapp.screens import run_actions
from ccapp.screens.rejudge import rejudge
from ccapp.screens.run_page import RunPage, run_page
from ccapp.screens.widgets import (
    CorrChart,
    Palette,
    Series,
    continuation_text,
    fill_corr_table,
    fixed_columns,
    footer,
)
from ccapp.store import Run, RunKind, Store, runs
from ccapp.store import evals as rows_store
from ccapp.store.records import Continuation

PAGE = 100


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


# The verdict filter's choices: the value each stands for, and what the select shows.
VERDICT_FILTER = {
    "any": "any verdict",
    "yes": "corrected",
    "no": "not corrected",
    "unparsed": "unparsed",
    "error": "error",
}


# A verdict in the continuation list, one character each so the text keeps the width.
VERDICT_MARKS = {"yes": "✓", "no": "✗", "unparsed": "?", "error": "!"}
MARKS_LEGEND = "✓ corrected ✗ not ? unparsed ! error"


class RunDetailScreen(RunPage):
    CSS_PATH = "run_detail.tcss"
    KIND = RunKind.EVAL
    SUMMARY_ID = "detail-summary"
    OWN_KEYS = (
        ("j", "rejudge", "Re-judge", "Judge the stored continuations again"),
        ("c", "compare", "Compare", "Corr@k beside another run's"),
        ("f", "save_figure", "Figure", "Save the Corr@k figure as PNG (as ccapp plot)"),
        ("p", "toggle_prompt", "Prompt", "Show the exact prompt the model saw"),
    )
    PAGED = True

    def __init__(self, run_id: int, db_path: Path):
        super().__init__(run_id, db_path)
        self.metrics: dict[str, dict[str, Any]] = {}
        self.page_offset = 0
        self.page_total: int | None = None  # known once a page has loaded
        self.page_wanted: tuple[rows_store.BrowseFilter, int] | None = None
        self.page_shown: tuple[rows_store.BrowseFilter, int] | None = None
        self.page_rows: list[Continuation] = []
        self.one_wanted: int | None = None  # the continuation whose text is being loaded
        self.show_prompt = False
        self.choices: dict[str, list[tuple[str, Any]]] = {}  # each filter's choices, as set

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static("Loading…", id="detail-summary")
            with Horizontal(id="detail-results"):
                yield DataTable(id="detail-per-k", cursor_type="none", zebra_stripes=True)
                yield CorrChart(id="detail-chart")
            yield Static("", id="detail-usage", markup=False)
            with Horizontal(id="detail-filters"):
                with Vertical(classes="filter"):
                    yield Static("k", classes="filter-label")
                    yield Select([], prompt="all k", id="filter-k")
                with Vertical(classes="filter"):
                    yield Static("judge", classes="filter-label")
                    yield Select(
                        [("heuristic", "heuristic")],
                        value="heuristic",
                        id="filter-judge",
                        allow_blank=False,
                    )
                with Vertical(classes="filter"):
                    yield Static("verdict", classes="filter-label")
                    yield Select(
                        [(text, label) for label, text in VERDICT_FILTER.items()],
                        value="any",
                        id="filter-label",
                        allow_blank=False,
                    )
                with Vertical(classes="switch"):
                    yield Static("disagrees with heuristic", classes="filter-label")
                    yield Switch(False, id="filter-disagree")
            yield Static("", id="detail-page", markup=False)
            yield DataTable(id="detail-rows", cursor_type="row", zebra_stripes=True)
            yield Static("", id="detail-one")
            yield Static("", id="detail-prompt", markup=False)
        yield from footer()

    def on_mount(self) -> None:
        # The per-k table only shows numbers: Tab goes from the filters to the continuations.
        self.query_one("#detail-per-k", DataTable).can_focus = False
        self.query_one("#detail-prompt", Static).display = False
        fixed_columns(
            self.query_one("#detail-rows", DataTable),
            ("id", 6),
            ("request", 7),
            ("k", 4),
            ("path", 4),
            ("verdicts", self.verdicts_width),
            ("text", self.text_width()),
        )

    verdicts_width = 30  # until the run's judges are known: then as wide as their verdicts

    def text_width(self) -> int:
        """The text column takes what the others (21), the cells' padding (12), the margins
        and the scrollbar (7) leave of the terminal, never under 16 (29 at 80 columns with
        two judges)."""
        return max(16, self.app.size.width - 40 - self.verdicts_width)

    def fit_verdicts(self, judges: list[str]) -> None:
        """The verdicts column as wide as "judge ✓" for each judge, up to 30: the text
        beside it is what the user reads."""
        self.verdicts_width = min(30, max(8, sum(len(_short(j)) + 3 for j in judges) - 1))
        table = self.query_one("#detail-rows", DataTable)
        column = table.columns.get(ColumnKey("verdicts"))
        if column is not None and column.width != self.verdicts_width:
            column.width = self.verdicts_width
        self.on_resize()

    def on_resize(self) -> None:
        table = self.query_one("#detail-rows", DataTable)
        column = table.columns.get(ColumnKey("text"))
        if column is not None and column.width != self.text_width():
            column.width = self.text_width()
        table.refresh(layout=True)

    # -- loading ------------------------------------------------------------------------------
    # Worker threads get every value they need as arguments (widgets are read here, on the UI
    # thread), open their own store connection and only post messages back. A failure shows
    # as a modal (AppScreen) and leaves what is on screen as it was.

    def overview(self, store: Store, run: Run) -> Overview:
        from ccapp.engines.c2eval.report import run_metrics

        judges = rows_store.judges_of(store, run.id) if run.kind is RunKind.EVAL else []
        metrics = {judge: run_metrics(store, run, judge) for judge in judges}
        usage = rows_store.usage(store, run.id)
        return Overview(run, metrics, usage, runs.lineage(store, run.id))

    @on(Overview)
    def show_overview(self, message: Overview) -> None:
        run = message.run
        if run.kind is not RunKind.EVAL:  # opened on a syn or train run: its own page
            if self.app.screen is self:
                self.app.switch_screen(run_page(run.id, self.db_path, run.kind))
            return
        self.metrics = message.metrics
        self.show_run(run, message.lineage)
        judges = list(self.metrics)
        self.fit_verdicts(judges)
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
        self._keep_or_set(self.query_one("#filter-k", Select), [(f"k = {k}", k) for k in ks])
        judge_select = self.query_one("#filter-judge", Select)
        if judges and self._keep_or_set(judge_select, [(j, j) for j in judges]):
            judge_select.value = run.judge if run.judge in judges else judges[0]
        self.reload_page()

    def _keep_or_set(self, select: Select[Any], options: list[tuple[str, Any]]) -> bool:
        """Give a filter these choices unless it has them already (its choice is kept when
        the page is reread); True when they were set."""
        if self.choices.get(str(select.id)) == options:
            return False
        select.set_options(options)
        self.choices[str(select.id)] = options
        return True

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
        # the same page read again (a run that is still being written): the cursor stays
        keep = table.cursor_row if (message.flt, message.offset) == self.page_shown else 0
        self.page_shown = (message.flt, message.offset)
        table.clear()
        for c in message.rows:
            verdicts = " ".join(
                f"{_short(j)} {VERDICT_MARKS.get(v.label, v.label)}"
                for j, v in sorted(c.verdicts.items())
            )
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
            # none: the page line, right under the filters, says why (the panel below may be
            # out of view on a small terminal)
            self.nothing_shown()
            if not message.total
            else f"continuations {message.offset + 1}–{last} of {message.total}"
            f" ([ and ] turn pages) · {MARKS_LEGEND}"
        )
        if 0 < keep < table.row_count:
            table.move_cursor(row=keep)
        self.show_selected()

    @on(Select.Changed)
    @on(Switch.Changed)
    def filters_changed(self) -> None:
        # "disagrees with heuristic" means something only for another judge's verdicts
        judge = self.query_one("#filter-judge", Select).value
        switch = self.query_one("#filter-disagree", Switch)
        offered = isinstance(judge, str) and judge != "heuristic"
        if switch.parent is not None:
            switch.parent.display = offered
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
            view.update("")  # the page line above the list says why there is none
            self._show_prompt(None)
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
            text.append("\n\nrendered prompt (what the model saw): below", style="bold")
        self.query_one("#detail-one", Static).update(text)
        self._show_prompt(cell.rendered_prompt if self.show_prompt and cell else None)

    def _show_prompt(self, rendered: str | None) -> None:
        """The rendered prompt in its panel, scrolled to the top of the view (p)."""
        panel = self.query_one("#detail-prompt", Static)
        panel.display = rendered is not None
        if rendered is None:
            return
        panel.update(rendered)
        panel.border_title = "rendered prompt (what the model saw) · p hides it"
        # After the layout that gives the panel its place (it was hidden until now).
        self.call_after_refresh(panel.scroll_visible, top=True, animate=False)

    def nothing_shown(self) -> str:
        """What the continuation panel says when the page holds none: which filters match
        nothing, or that the run has no continuations yet."""
        if self.page_total is None:
            return ""
        chosen = self.filters_chosen()
        if not chosen:
            return "This run has no stored continuations yet."
        return (
            f"No continuation matches {' · '.join(chosen)}: change a filter above "
            "(Tab reaches them) to see more."
        )

    def filters_chosen(self) -> list[str]:
        """The filters that narrow the page, in words ("k = 10", "not corrected by heuristic")."""
        flt = self.current_filter()
        chosen = []
        if flt.k is not None:
            chosen.append(f"k = {flt.k}")
        if flt.label is not None:
            chosen.append(f"{VERDICT_FILTER.get(flt.label, flt.label)} by {flt.judge}")
        if flt.disagree is not None:
            chosen.append(f"{flt.disagree[1]} disagreeing with {flt.disagree[0]}")
        return chosen

    def action_toggle_prompt(self) -> None:
        if not self.page_rows:
            self.notify(
                "No continuation is shown, so there is no prompt to show: "
                + (self.nothing_shown() or "the page is still loading."),
                title="Prompt",
                severity="warning",
            )
            return
        self.show_prompt = not self.show_prompt
        if self.show_prompt:
            self.show_selected()
        else:
            self._show_prompt(None)
            self.show_selected()

    # -- actions --------------------------------------------------------------------------

    def action_rejudge(self) -> None:
        if self.run is not None:
            rejudge(self, self.run, self.db_path)

    def action_save_figure(self) -> None:
        from ccapp.screens.run_actions import save_figure

        save_figure(self, [self.run_id], self.db_path)

    def action_compare(self) -> None:
        if self.run is not None:
            run_actions.compare(self, self.run, self.db_path)


def _short(judge: str) -> str:
    """A judge's name short enough for a table cell."""
    if judge.startswith("openai:"):
        return judge.removeprefix("openai:").split("@")[0][-18:]
    if judge.startswith("hf:"):
        return "hf:" + judge.removeprefix("hf:").rstrip("/").split("/")[-1][-15:]
    return judge
