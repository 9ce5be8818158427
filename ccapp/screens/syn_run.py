"""A syn run's page: where its requests came from and what each filter kept, how many groups
were kept or rejected and why, and a browser of its groups: the six ranked responses with
the cut and the trigger lit, and the 15 preference pairs a kept group gives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Group as RichGroup
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Header, Select, Static

from ccapp.screens.run_page import RunPage
from ccapp.screens.syn import RANK_NAMES, group_view
from ccapp.screens.widgets import Palette, fixed_columns, footer, many
from ccapp.store import Run, RunKind, Store, runs
from ccapp.store import syn as syn_store

PAGE = 100
GROUP_FILTER = (("all groups", "all"), ("kept", "ok"), ("rejected", "rejected"))


@dataclass
class SynOverview(Message):
    run: Run
    lineage: list[Run]
    counts: dict[str, int]  # ok, rejected
    reasons: dict[str, int]  # rejected groups by reason
    pairs: int


@dataclass
class GroupsPage(Message):
    heads: list[syn_store.GroupHead]
    total: int
    wanted: tuple[str, int]  # (status filter, offset) it was read for


@dataclass
class OneGroup(Message):
    group: syn_store.Group
    pairs: list[tuple[int, int]]


LIMIT_KEY = "beyond --limit"  # the engine's count of requests that passed but --limit left out


def source_text(source: dict[str, int], limit: int | None = None) -> Text:
    """What the run read and what each filter dropped, from its stored source_counts: rows
    read and requests kept first, then the drops in the order the filters ran, and last the
    requests that passed every filter but the limit left out (not a filter's verdict; the
    form's Limit field, the CLI's --limit)."""
    text = Text()
    if not source:
        return text.append("source counts: not recorded for this run", style="dim")
    read = source.get("source")
    text.append(f"read {read if read is not None else '–'} rows", style="bold")
    text.append(f" → kept {source.get('kept', '–')} requests", style="bold")
    drops = [(r, n) for r, n in source.items() if r not in ("source", "kept", LIMIT_KEY) and n]
    if drops:
        text.append("\ndropped by the filters: ")
        text.append(" · ".join(f"{reason} {n}" for reason, n in drops))
    beyond = source.get(LIMIT_KEY, 0)
    if beyond:
        cap = f"the limit ({limit})" if limit is not None else "the limit"
        text.append(f"\nleft out by {cap}: {beyond} more passed the filters", style="dim")
    return text


def results_text(counts: dict[str, int], reasons: dict[str, int], pairs: int) -> Text:
    """Kept and rejected groups, with the reasons and the pairs the kept ones give."""
    text = Text()
    text.append(f"kept {many(counts.get('ok', 0), 'group')} ({pairs} pairs)", style="bold")
    text.append(f" · rejected {counts.get('rejected', 0)}")
    for reason, n in sorted(reasons.items(), key=lambda r: -r[1]):
        text.append(f" · {reason}: {n}")
    return text


def pairs_text(pairs: list[tuple[int, int]], palette: Palette) -> Text:
    """A group's preference pairs, chosen ≻ rejected, five to a line."""
    text = Text(f"{len(pairs)} pairs (chosen ≻ rejected)", style="bold")
    if not pairs:
        return text.append(": a rejected group gives none", style=palette.dim)
    for index, (chosen, rejected) in enumerate(pairs):
        text.append("\n" if index % 5 == 0 else "   ")
        text.append(f"{RANK_NAMES[chosen]} ≻ {RANK_NAMES[rejected]}".ljust(16))
    return text


class SynRunScreen(RunPage):
    KIND = RunKind.SYN
    OWN_KEYS = (("t", "train", "Train on it", "DPO training on this run's pairs"),)
    PAGED = True

    def __init__(self, run_id: int, db_path: Path):
        super().__init__(run_id, db_path)
        self.page_offset = 0
        self.total: int | None = None
        self.wanted: tuple[str, int] | None = None
        self.heads: list[syn_store.GroupHead] = []
        self.group_wanted: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="syn-run"):
            yield Static("Loading…", id="syn-run-summary")
            yield Static("", id="syn-run-source")
            yield Static("", id="syn-run-results")
            with Horizontal(id="syn-run-filters"):
                yield Select(GROUP_FILTER, value="all", id="syn-run-status", allow_blank=False)
                yield Static("", id="syn-run-page", markup=False)
            yield DataTable(id="syn-run-groups", cursor_type="row", zebra_stripes=True)
            yield Static("", id="syn-run-group")
            yield Static("", id="syn-run-pairs")
        yield from footer()

    def on_mount(self) -> None:
        fixed_columns(
            self.query_one("#syn-run-groups", DataTable),
            ("group", 6),
            ("request", 7),
            ("status", 9),
            ("why / request", 70),
        )

    def overview(self, store: Store, run: Run) -> SynOverview:
        return SynOverview(
            run,
            runs.lineage(store, run.id),
            syn_store.counts(store, run.id),
            syn_store.rejection_reasons(store, run.id),
            syn_store.pair_count(store, run.id),
        )

    @on(SynOverview)
    def show_overview(self, message: SynOverview) -> None:
        self.show_run(message.run, message.lineage)
        self.query_one("#syn-run-source", Static).update(
            source_text(
                message.run.config.get("source_counts") or {}, message.run.config.get("limit")
            )
        )
        self.query_one("#syn-run-results", Static).update(
            results_text(message.counts, message.reasons, message.pairs)
        )
        self.load_page()

    def status_filter(self) -> str:
        value = self.query_one("#syn-run-status", Select).value
        return value if isinstance(value, str) else "all"

    def load_page(self) -> None:
        self.wanted = (self.status_filter(), self.page_offset)
        self.read_page(self.db_path, self.run_id, *self.wanted)

    @work(thread=True, exclusive=True, group="page", name="Reading the groups", exit_on_error=False)
    def read_page(self, db_path: Path, run_id: int, status: str, offset: int) -> None:
        with Store.open(db_path) as store:
            heads, total = syn_store.group_heads(
                store,
                run_id,
                status=None if status == "all" else status,
                offset=offset,
                limit=PAGE,
            )
        self.post_message(GroupsPage(heads, total, (status, offset)))

    @on(GroupsPage)
    def show_page(self, message: GroupsPage) -> None:
        if message.wanted != self.wanted:
            return  # a newer page was asked for meanwhile
        self.heads, self.total = message.heads, message.total
        table = self.query_one("#syn-run-groups", DataTable)
        table.clear()
        for head in message.heads:
            why = head.reason if head.status != "ok" else head.request
            table.add_row(
                str(head.id),
                str(head.item_idx),
                "kept" if head.status == "ok" else "rejected",
                Text((why or "").replace("\n", " ")[:90]),
                key=str(head.id),
            )
        last = min(self.page_offset + PAGE, message.total)
        first = self.page_offset + 1 if message.total else 0
        self.query_one("#syn-run-page", Static).update(
            f"groups {first}–{last} of {message.total} ([ and ] turn pages)"
        )
        self.show_selected()

    @on(Select.Changed, "#syn-run-status")
    def filter_changed(self) -> None:
        if self.run is not None:
            self.page_offset = 0
            self.load_page()

    def action_page(self, step: int) -> None:
        offset = max(0, self.page_offset + step * PAGE)
        if self.total is not None and offset >= self.total:
            return
        self.page_offset = offset
        self.load_page()

    @on(DataTable.RowHighlighted, "#syn-run-groups")
    def show_selected(self) -> None:
        table = self.query_one("#syn-run-groups", DataTable)
        if not self.heads or table.row_count == 0:
            self.group_wanted = None
            self.query_one("#syn-run-group", Static).update("no group here yet")
            self.query_one("#syn-run-pairs", Static).update("")
            return
        head = self.heads[min(table.cursor_row, len(self.heads) - 1)]
        self.group_wanted = head.id
        self.read_group(self.db_path, head.id)

    @work(thread=True, exclusive=True, group="group", name="Reading the group", exit_on_error=False)
    def read_group(self, db_path: Path, group_id: int) -> None:
        with Store.open(db_path) as store:
            group = syn_store.get_group(store, group_id)
            pairs = syn_store.group_pairs(store, group_id)
        if group is not None:
            self.post_message(OneGroup(group, pairs))

    @on(OneGroup)
    def show_group(self, message: OneGroup) -> None:
        group = message.group
        if group.id != self.group_wanted:
            return  # the cursor moved on while this one was read
        palette = Palette.from_theme(self.app.current_theme)
        view = group_view(
            group.item_idx, group.request, group.status, group.reason, group.responses, palette
        )
        legend = Text("✂ the cut · ", style=palette.dim)
        legend.append("trigger", style=f"bold reverse {palette.accent}")
        legend.append(" · the model's continuation", style=palette.success)
        self.query_one("#syn-run-group", Static).update(RichGroup(view, legend))
        self.query_one("#syn-run-pairs", Static).update(pairs_text(message.pairs, palette))

    def action_train(self) -> None:
        """The Train form with this run's pairs filled in."""
        from ccapp.screens.train import TrainFormScreen, TrainValues

        if self.run is None or self.run.status.value != "done":
            self.notify("Train on a syn run once it is done.")
            return
        self.app.push_screen(TrainFormScreen(TrainValues(pairs=str(self.run_id))))
