"""The paper's table (`ccapp table`): one row per eval run, Corr@k per k and Corr_mean with
their 95% intervals, optionally the paired Δ against a baseline run; as Markdown, CSV or
LaTeX.

Every number comes from what the report computes (`report.run_metrics`: the request-level
bootstrap of metrics.py) and every Δ from `comparison.compare_runs` (the paired bootstrap of
`ccapp`'s comparisons), so the table can never disagree with the report or the app. Runs
need not share their k: the columns are the union, and a k a run did not evaluate is shown as
"–" and named in the notes, never left to look like a zero or a gap in the data.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ccapp.engines.c2eval.comparison import compare_runs
from ccapp.engines.c2eval.metrics import BOOTSTRAP_REPLICATES
from ccapp.engines.c2eval.report import judge_of, run_metrics
from ccapp.store import Run, Store, runs
from ccapp.store import evals as rows_store

MEAN = "mean"
NOT_RUN = "–"  # a k this run did not evaluate
NO_VERDICTS = "n/a"  # a k it evaluated without a single yes/no verdict


@dataclass(frozen=True)
class Estimate:
    """One number with its 95% interval. `requests`: how many requests the interval
    resamples — from one, its zero width is no certainty and it is not shown."""

    value: float | None  # None: measured nothing (no yes/no verdict)
    low: float | None = None
    high: float | None = None
    requests: int = 0
    excludes_zero: bool = False  # for a Δ: the paired interval lies wholly above or below 0

    @property
    def has_interval(self) -> bool:
        return self.value is not None and self.low is not None and self.requests != 1


@dataclass(frozen=True)
class TableRow:
    """A run's line: its Corr@k (keys "10", "20", …, "mean"), and its Δ against the baseline
    (same keys) or why there is none."""

    run_id: int
    model: str
    judge: str
    ks: tuple[int, ...]
    requests: int
    corr: dict[str, Estimate]
    is_baseline: bool = False
    status: str = "done"
    delta: dict[str, Estimate] | None = None
    delta_note: str | None = None  # why there is no Δ (or no Δ Corr_mean)


@dataclass
class CorrTable:
    ks: list[int]  # the union of the runs' k, ascending
    rows: list[TableRow]
    baseline: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [str(k) for k in self.ks] + [MEAN]


def build_table(
    store: Store, run_ids: Sequence[int], *, judge: str | None = None, baseline: int | None = None
) -> CorrTable:
    """The table of `run_ids` (each once, in the order given; the baseline first when it is
    not among them), judged by `judge` or each run's own judge."""
    order = list(dict.fromkeys(run_ids))
    if baseline is not None and baseline not in order:
        order.insert(0, baseline)
    chosen = [runs.get_run(store, run_id) for run_id in order]
    judges = {run.id: judge_of(store, run, judge) for run in chosen}
    rows = [_row(store, run, judges[run.id], is_baseline=run.id == baseline) for run in chosen]
    if baseline is not None:
        base = next(run for run in chosen if run.id == baseline)
        rows = [row if row.is_baseline else _with_delta(store, base, row, chosen) for row in rows]
    ks = sorted({k for row in rows for k in row.ks})
    table = CorrTable(ks, rows, baseline)
    table.notes = _notes(table)
    return table


def _row(store: Store, run: Run, judge: str, *, is_baseline: bool) -> TableRow:
    metrics = run_metrics(store, run, judge)
    ks = tuple(int(k) for k in run.config.get("ks", []))
    behind = metrics["ci95_requests"]
    corr = {
        str(k): _estimate(metrics["corr"].get(str(k)), metrics["ci95"].get(str(k)), behind[str(k)])
        for k in ks
    }
    corr[MEAN] = _estimate(metrics["corr_mean"], metrics["ci95"].get(MEAN), behind.get(MEAN, 0))
    return TableRow(
        run.id,
        model_label(run.model),
        judge,
        ks,
        metrics["requests"],
        corr,
        is_baseline,
        run.status.value,
    )


def _estimate(value: float | None, interval: list[float] | None, requests: int) -> Estimate:
    low, high = interval if value is not None and interval else (None, None)
    return Estimate(value, low, high, requests)


def _with_delta(store: Store, base: Run, row: TableRow, chosen: list[Run]) -> TableRow:
    """The row with its paired Δ (row − baseline) under the row's judge, or the reason why
    there is none, as `compare_runs` gives it."""
    run = next(r for r in chosen if r.id == row.run_id)
    if row.judge not in rows_store.judges_of(store, base.id):
        note = f"baseline run {base.id} has no verdicts from {row.judge}"
        return _replace_delta(row, None, note)
    result = compare_runs(store, base, run, (row.judge, row.judge))
    if not result["paired"]:
        return _replace_delta(row, None, result["reason"])
    delta = {k: _delta_estimate(entry) for k, entry in result["by_k"].items()}
    if result["mean"] is not None:
        delta[MEAN] = _delta_estimate(result["mean"])
    return _replace_delta(row, delta, None if result["mean"] else result["mean_reason"])


def _delta_estimate(entry: dict[str, Any]) -> Estimate:
    low, high = entry["ci95"] or (None, None)
    return Estimate(entry["delta"], low, high, entry["requests"], entry["excludes_zero"])


def _replace_delta(row: TableRow, delta: dict[str, Estimate] | None, note: str | None) -> TableRow:
    return replace(row, delta=delta, delta_note=note)


def model_label(model: str) -> str:
    """What the model column shows: a preset or Hub id as typed, a folder by its name (a
    trained model's full path would swamp the table)."""
    path = Path(model)
    if model.startswith(("/", "~", "./", "../")) and path.name:
        return path.name
    return model


def _ks_text(ks: Sequence[int | str]) -> str:
    return ", ".join(str(k) for k in ks)


def _notes(table: CorrTable) -> list[str]:
    """What the reader must know to read the numbers right, in the order they matter."""
    notes = [
        f"Corr@k with 95% bootstrap intervals over requests ({BOOTSTRAP_REPLICATES} replicates)."
    ]
    notes += [
        f"run {row.run_id} is {row.status}: its numbers cover only what it had judged."
        for row in table.rows
        if row.status != "done"
    ]
    missing = [
        f"run {row.run_id}: k = {_ks_text([k for k in table.ks if k not in row.ks])}"
        for row in table.rows
        if set(row.ks) != set(table.ks)
    ]
    if missing:
        notes.append(f"{NOT_RUN}: k not evaluated by the run ({'; '.join(missing)}).")
        notes.append(
            "Corr_mean is each run's mean over its own k: "
            + "; ".join(f"run {row.run_id}: k = {_ks_text(row.ks)}" for row in table.rows)
            + "."
        )
    empty = [
        f"run {row.run_id}: k = {_ks_text([k for k in row.corr if row.corr[k].value is None and k != MEAN])}"
        for row in table.rows
        if any(e.value is None for key, e in row.corr.items() if key != MEAN)
    ]
    if empty:
        notes.append(
            f"{NO_VERDICTS}: no yes/no verdict at that k, hence no Corr_mean ({'; '.join(empty)})."
        )
    estimates = [e for row in table.rows for e in [*row.corr.values(), *(row.delta or {}).values()]]
    if any(e.value is not None and e.requests == 1 for e in estimates):
        notes.append("†: from a single request, so no interval.")
    if table.baseline is not None:
        notes.append(
            f"Δ: the run minus baseline run {table.baseline} on the same requests, with paired "
            "bootstrap intervals; *: the interval excludes 0."
        )
        notes.extend(
            f"run {row.run_id}: no Δ{'' if row.delta is None else ' Corr_mean'}: {row.delta_note}."
            for row in table.rows
            if row.delta_note
        )
    return notes


# -- rendering --------------------------------------------------------------------------


def render(table: CorrTable, fmt: str) -> str:
    """The table as text in `fmt`: markdown, csv or latex (the choices of `ccapp table`)."""
    return {"markdown": to_markdown, "csv": to_csv, "latex": to_latex}[fmt](table)


def _cell(
    estimate: Estimate | None, *, signed: bool = False, interval: str = "[{}, {}]"
) -> tuple[str, str]:
    """(the value with its marks, the interval) as the text formats print them."""
    if estimate is None:
        return NOT_RUN, ""
    if estimate.value is None:
        return NO_VERDICTS, ""
    number = "{:+.3f}" if signed else "{:.3f}"
    value = number.format(estimate.value)
    if estimate.value is not None and estimate.requests == 1:
        return value + "†", ""
    value += "*" if estimate.excludes_zero else ""
    if not estimate.has_interval:
        return value, ""
    return value, interval.format(number.format(estimate.low), number.format(estimate.high))


def _header(table: CorrTable) -> list[str]:
    return ["Run", "Model", "Judge", *(f"Corr@{k}" for k in table.ks), "Corr_mean"]


def _lines(table: CorrTable) -> list[tuple[list[str], list[tuple[str, str]], bool]]:
    """Each printed line: its first three cells, its (value, interval) cells, and whether it
    is a Δ line. A Δ line follows each run's line when there is a baseline."""
    out = []
    for row in table.rows:
        label = f"{row.run_id} (baseline)" if row.is_baseline else str(row.run_id)
        out.append(
            (
                [label, row.model, row.judge],
                [_cell(row.corr.get(key)) for key in table.keys],
                False,
            )
        )
        if table.baseline is not None and not row.is_baseline:
            delta = row.delta or {}
            cells = [_cell(delta.get(key), signed=True) for key in table.keys]
            out.append(([f"Δ {row.run_id}", f"vs run {table.baseline}", row.judge], cells, True))
    return out


def to_markdown(table: CorrTable) -> str:
    """A pipe table with its header separator (GitHub, Jupyter, pandoc), then the notes."""
    header = _header(table)
    lines = [
        _pipe(header),
        _pipe(["---"] * 3 + ["---:"] * (len(header) - 3)),
    ]
    for first, cells, _ in _lines(table):
        lines.append(_pipe(first + [" ".join(p for p in cell if p) for cell in cells]))
    notes = "\n".join(f"- {markdown_escape(note)}" for note in table.notes)
    return "\n".join(lines) + "\n\n" + notes + "\n"


MARKDOWN_SPECIALS = "\\`*_<|"


def markdown_escape(text: str) -> str:
    """Text as Markdown shows it literally: a model name's _ or a Δ's * starts no emphasis,
    a | ends no cell, a < opens no HTML."""
    return "".join(f"\\{ch}" if ch in MARKDOWN_SPECIALS else ch for ch in text)


def _pipe(cells: list[str]) -> str:
    return "| " + " | ".join(markdown_escape(c) for c in cells) + " |"


def to_csv(table: CorrTable) -> str:
    """One line per run, numbers as numbers: a k the run lacks (or has no verdicts at) is an
    empty field, which pandas reads as NaN; `notes` says which and why."""
    columns = ["run", "model", "judge", "ks", "requests"]
    for key in table.keys:
        name = "corr_mean" if key == MEAN else f"corr@{key}"
        columns += [name, f"{name}_low", f"{name}_high"]
    if table.baseline is not None:
        columns.append("baseline")
        for key in table.keys:
            name = "delta_mean" if key == MEAN else f"delta@{key}"
            columns += [name, f"{name}_low", f"{name}_high"]
    columns.append("notes")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table.rows:
        line: list[Any] = [row.run_id, row.model, row.judge, _ks_text(row.ks), row.requests]
        line += _numbers(row.corr, table.keys)
        if table.baseline is not None:
            line.append(table.baseline)
            line += _numbers(row.delta or {}, table.keys)
        line.append(_row_notes(table, row))
        writer.writerow(line)
    return buffer.getvalue()


def _numbers(estimates: dict[str, Estimate], keys: list[str]) -> list[Any]:
    out: list[Any] = []
    for key in keys:
        e = estimates.get(key)
        shown = e is not None and e.has_interval
        out += [
            "" if e is None or e.value is None else e.value,
            e.low if shown and e is not None else "",
            e.high if shown and e is not None else "",
        ]
    return out


def _row_notes(table: CorrTable, row: TableRow) -> str:
    parts = []
    absent = [k for k in table.ks if k not in row.ks]
    if absent:
        parts.append(f"not evaluated at k = {_ks_text(absent)}")
    empty = [key for key, e in row.corr.items() if e.value is None and key != MEAN]
    if empty:
        parts.append(f"no yes/no verdicts at k = {_ks_text(empty)}")
    if row.delta_note:
        parts.append(f"no Δ{'' if row.delta is None else ' Corr_mean'}: {row.delta_note}")
    return "; ".join(parts)


LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "Δ": r"$\Delta$",
    "–": "--",
    "†": r"$^\dagger$",
}


def latex_escape(text: str) -> str:
    """Text as LaTeX typesets it literally (model names hold _, notes hold % and --limit,
    whose -- would become a dash)."""
    out = []
    for i, ch in enumerate(text):
        out.append(
            "-{}" if ch == "-" and text[i + 1 : i + 2] == "-" else LATEX_SPECIALS.get(ch, ch)
        )
    return "".join(out)


def to_latex(table: CorrTable) -> str:
    """A booktabs tabular (\\usepackage{booktabs}) to \\input into a table environment,
    followed by its notes in small type, so that they travel with it."""
    header = _header(table)
    lines = [
        "% ccapp table; needs \\usepackage{booktabs}",
        "\\begin{tabular}{lll" + "c" * (len(header) - 3) + "}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in header) + " \\\\",
        "\\midrule",
    ]
    for first, cells, is_delta in _lines(table):
        texts = [latex_escape(c) for c in first]
        if is_delta:
            texts[0] = "\\quad " + texts[0]
        for value, interval in cells:
            text = _latex_number(value)
            if interval:  # stacked under the value: a column as narrow as its number
                text = (
                    "\\begin{tabular}{@{}c@{}}"
                    + text
                    + " \\\\ {\\scriptsize "
                    + _latex_number(interval)
                    + "}\\end{tabular}"
                )
            texts.append(text)
        lines.append(" & ".join(texts) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\par\\smallskip", "{\\footnotesize"]
    lines += [latex_escape(note) + "\\par" for note in table.notes]
    return "\n".join(lines) + "}\n"


def _latex_number(text: str) -> str:
    """A cell's number or interval: signs as math minus and plus (a text hyphen is too
    short), marks as superscripts, "–" as an en dash; a cell holds nothing else."""
    marks = {NOT_RUN: "--", "†": r"$^\dagger$", "*": r"$^*$"}
    text = "".join(marks.get(ch, ch) for ch in text)
    return re.sub(r"([+-])(?=\d)", r"$\1$", text)
