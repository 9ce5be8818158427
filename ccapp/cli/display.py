"""What a person at a terminal sees during a job: a Rich progress bar, then a Corr@k table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ccapp.engines import events as ev


class TerminalSink:
    """The engine's event sink for humans: progress on stderr, results on stdout."""

    wants_tokens = False

    def __init__(self) -> None:
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)  # logs unbroken
        self.out = Console(highlight=False)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[corr]}"),
            console=self.err,
            transient=True,
        )
        self.task: Any = None
        self.run_id: int | None = None

    def emit(self, event: ev.Event) -> None:
        match ev.declared(event):
            case ev.ModelLoading(phase=phase, detail=detail):
                self.err.print(
                    f"[dim]model: {phase} {detail or ''}[/]", markup=True, highlight=False
                )
            case ev.RunStarted(kind=kind, totals=totals):
                unit = next(u for u in ("groups", "continuations", "steps") if u in totals)
                total, todo = totals[unit], totals.get("todo", totals[unit])
                scope = "".join(f"{totals[k]} {k}, " for k in ("requests", "pairs") if k in totals)
                self.err.print(f"{kind} run: {scope}{total} {unit} ({todo} to do)")
                self.progress.start()
                verb = {"judge": "judging", "syn": "synthesizing", "train": "training"}.get(
                    kind, "generating"
                )
                self.task = self.progress.add_task(
                    verb, total=total, completed=total - todo, rate="", corr=""
                )
            case ev.Progress(done=done, rate=rate) if self.task is not None:
                self.progress.update(
                    self.task, completed=done, rate=f"{rate:.1f}/s" if rate is not None else ""
                )
            case ev.TrainLog(loss=loss, reward_margin=margin) if self.task is not None:
                if loss is not None:
                    self.progress.update(
                        self.task,
                        corr=f"loss {loss:.4f}"
                        + (f" · margin {margin:.3f}" if margin is not None else ""),
                    )
            case ev.MetricsEvent(metrics={"eval_loss": float() | int() as eval_loss}) if (
                self.task is not None
            ):  # a training run's eval split, scored at this step
                self.progress.update(self.task, corr=f"eval loss {eval_loss:.4f}")
            case ev.MetricsEvent(metrics=metrics) if self.task is not None:
                mean = metrics.get("corr_mean")
                self.progress.update(
                    self.task, corr=f"Corr_mean {mean:.3f}" if mean is not None else ""
                )
            case ev.Log(level=level, message=message):
                self.err.print(f"{level}: {message}", markup=False)

    def tokens(self, deltas: list[tuple[int, int, str]]) -> None:
        pass

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()

    def finished(self, run: Any) -> None:
        print_result(self.out, run)


def print_result(out: Console, run: Any) -> None:
    """A finished run's result for a person: an eval run's Corr@k table, what a syn run made
    and left out, where a train run's loss went and its model is."""
    metrics = run.metrics
    if run.kind.value == "train":
        out.print(
            f"run {run.id}: {run.status.value} · {metrics.get('pairs')} pairs · "
            f"loss {metrics.get('loss_first')} → "
            f"{metrics.get('loss_last')} · reward margin {metrics.get('reward_margin_first')} → "
            f"{metrics.get('reward_margin_last')} · model in {metrics.get('output')}",
            markup=False,
        )
        return
    if "corr" not in metrics:  # a syn run: what it made and what it left out
        out.print(
            f"run {run.id}: {run.status.value} · {metrics.get('groups', 0)} groups, "
            f"{metrics.get('pairs', 0)} pairs, {metrics.get('rejected', 0)} rejected",
            markup=False,
        )
        for name, n in {
            **metrics.get("source", {}),
            **metrics.get("rejection_reasons", {}),
        }.items():
            out.print(f"  {name}: {n}", markup=False)
        return
    out.print(
        corr_table(metrics, title=f"run {run.id} · {run.model} · judge {metrics.get('judge')}")
    )
    out.print(f"run {run.id}: {run.status.value}")


def corr_table(metrics: dict[str, Any], *, title: str = "") -> Table:
    """Every requested k (from `n`, which lists them all), including one with no yes/no
    verdict; `paths` counts the yes/no verdicts Corr@k is computed from, and the unparsed and
    errored paths are shown next to it, never folded in."""
    table = Table(
        "k",
        "Corr@k",
        "95% CI",
        "yes/no paths",
        "unparsed",
        "errors",
        title=title,
        title_justify="left",
    )
    corr = metrics.get("corr", {})
    for k in metrics.get("n", corr):
        value = corr.get(k)
        table.add_row(
            k,
            "no verdicts" if value is None else f"{value:.3f}",
            _interval_text(metrics, k) if value is not None else "–",
            str(metrics.get("n", {}).get(k, "")),
            str(metrics.get("unparsed", {}).get(k, 0)),
            str(metrics.get("errors", {}).get(k, 0)),
        )
    if corr or metrics.get("n"):
        mean = metrics.get("corr_mean")
        table.add_section()
        table.add_row(
            "mean",
            "–" if mean is None else f"{mean:.3f}",
            "–" if mean is None else _interval_text(metrics, "mean"),
            "",
            "",
            "",
        )
        if mean is None and metrics.get("corr_mean_reason"):
            table.caption = f"no Corr_mean: {metrics['corr_mean_reason']}"
    return table


def _interval_text(metrics: dict[str, Any], key: str) -> str:
    """The interval, unless it rests on one request: then its zero width means nothing."""
    low_high = metrics.get("ci95", {}).get(key)
    if metrics.get("ci95_requests", {}).get(key) == 1:
        return "1 request: no interval"
    return f"[{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else "–"
