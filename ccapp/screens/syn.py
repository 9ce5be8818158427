"""C2-Syn in the app: a form that becomes a `ccapp syn …` child, and its live view.

The live view shows progress with rate and ETA, the counts the filters and the verification
kept and dropped, and the latest group's six responses best to worst with the corrective
trigger lit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Group as RichGroup
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
    Switch,
)

from ccapp.engines.data import data_problem
from ccapp.engines.devices import Device
from ccapp.engines.generation.models import model_problem
from ccapp.engines.generation.presets import PRESETS
from ccapp.engines.judges.registry import parse_judge_spec
from ccapp.errors import UserError
from ccapp.screens.form_problems import refuse_launch, show_problems
from ccapp.screens.jobs import Job, JobEnded, JobEvent
from ccapp.screens.modals import ErrorModal, stop_or_back
from ccapp.screens.widgets import Palette

RANK_NAMES = ("safe", "SYN1", "SYN2", "SYN3", "SYN4", "harmful")


@dataclass
class SynValues:
    model: str = "tiny"
    device: str = "auto"
    data: str = "PKU-Alignment/PKU-SafeRLHF:train"
    from_run: str = ""
    limit: str = "100"
    questions_only: bool = True
    min_harmful_words: str = "80"
    max_new_tokens: str = "128"
    temperature: str = "0"
    verify_judge: str = ""


def syn_args(v: SynValues) -> tuple[list[str], dict[str, str]]:
    """The `ccapp syn` arguments for the form, and the problems by field id."""
    problems: dict[str, str] = {}
    if (problem := model_problem(v.model)) is not None:
        problems["model"] = problem
    if v.from_run.strip():
        if not v.from_run.strip().isdigit():
            problems["from_run"] = "a run id (a number), or empty to use the data"
    elif (problem := data_problem(v.data)) is not None:
        problems["data"] = problem
    for name, text, low in (
        ("limit", v.limit, 1),
        ("min_harmful_words", v.min_harmful_words, 0),
        ("max_new_tokens", v.max_new_tokens, 1),
    ):
        if text.strip() and not (text.strip().isdigit() and int(text) >= low):
            problems[name] = f"a whole number ≥ {low}" + (
                ", or empty for all" if name == "limit" else ""
            )
    try:
        if float(v.temperature) < 0:
            problems["temperature"] = "0 (greedy) or more"
    except ValueError:
        problems["temperature"] = "a number"
    if v.verify_judge.strip():
        try:
            parse_judge_spec(v.verify_judge)
        except UserError as exc:
            problems["verify_judge"] = exc.problem
    args = [
        "syn",
        "--model",
        v.model.strip(),
        "--device",
        v.device,
        "--max-new-tokens",
        v.max_new_tokens.strip() or "128",
        "--temperature",
        v.temperature.strip() or "0",
        "--min-harmful-words",
        v.min_harmful_words.strip() or "80",
    ]
    args += ["--from-run", v.from_run.strip()] if v.from_run.strip() else ["--data", v.data.strip()]
    if v.limit.strip():
        args += ["--limit", v.limit.strip()]
    if not v.questions_only:
        args.append("--all-prompts")
    if v.verify_judge.strip():
        args += ["--verify-judge", v.verify_judge.strip()]
    return args, problems


class SynFormScreen(Screen[None]):
    CSS_PATH = "syn.tcss"
    AUTO_FOCUS = "#syn-model"
    BINDINGS = [
        Binding("ctrl+s", "launch", "Launch", id="syn.launch", tooltip="Start synthesizing")
    ]

    FIELDS = {
        "model": "syn-model",
        "data": "syn-data",
        "from_run": "syn-from-run",
        "limit": "syn-limit",
        "min_harmful_words": "syn-min-words",
        "max_new_tokens": "syn-max-new",
        "temperature": "syn-temperature",
        "verify_judge": "syn-verify",
    }

    def __init__(self, values: SynValues | None = None):
        super().__init__()
        self.values = values or SynValues()

    def compose(self) -> ComposeResult:
        v = self.values
        yield Header()
        with VerticalScroll(id="syn-form"):
            yield Static("Synthesize preference pairs (C2-Syn)", classes="form-title")
            yield from self._field(
                "model",
                "Model (the one being aligned)",
                Input(
                    v.model,
                    id="syn-model",
                    suggester=SuggestFromList(list(PRESETS), case_sensitive=False),
                ),
            )
            yield from self._field(
                "device",
                "Device",
                Select([("auto", "auto")], value="auto", id="syn-device", allow_blank=False),
            )
            yield from self._field(
                "data", "Data (requests with harmful responses)", Input(v.data, id="syn-data")
            )
            yield from self._field(
                "from_run",
                "…or the requests an eval run failed on (run id)",
                Input(v.from_run, id="syn-from-run", placeholder="empty: use the data"),
            )
            with Horizontal(classes="row"):
                yield from self._field(
                    "limit", "Limit", Input(v.limit, id="syn-limit", placeholder="all")
                )
                yield from self._field(
                    "min_harmful_words",
                    "Harmful response over N words",
                    Input(v.min_harmful_words, id="syn-min-words"),
                )
                yield from self._field(
                    "questions_only",
                    "Only how/what questions",
                    Switch(v.questions_only, id="syn-questions"),
                )
            with Horizontal(classes="row"):
                yield from self._field(
                    "max_new_tokens", "Max new tokens", Input(v.max_new_tokens, id="syn-max-new")
                )
                yield from self._field(
                    "temperature",
                    "Temperature (0 = greedy)",
                    Input(v.temperature, id="syn-temperature"),
                )
            yield from self._field(
                "verify_judge",
                "Verify with a judge (optional)",
                Input(v.verify_judge, id="syn-verify", placeholder="e.g. heuristic, gpt-4o"),
            )
            yield Button("Launch (ctrl+s)", variant="primary", id="syn-launch")
        yield Footer()

    def _field(self, key: str, label: str, widget: Any) -> ComposeResult:
        with Vertical(classes="field"):
            yield Label(label)
            yield widget
            yield Static("", classes="problem", id=f"syn-problem-{key}", markup=False)

    def on_mount(self) -> None:
        self.probe_devices()
        self.validate()

    @work(exclusive=True, group="syn-devices", exit_on_error=False)
    async def probe_devices(self) -> None:
        try:
            devices: list[Device] = await self.app.probe_devices()  # type: ignore[attr-defined]
        except Exception:
            return
        options = [("auto", "auto")] + [(f"{d.id} — {d.name}", d.id) for d in devices]
        select = self.query_one("#syn-device", Select)
        select.set_options(options)
        select.value = "auto"

    def read(self) -> SynValues:
        q = self.query_one
        return SynValues(
            model=q("#syn-model", Input).value,
            device=str(q("#syn-device", Select).value),
            data=q("#syn-data", Input).value,
            from_run=q("#syn-from-run", Input).value,
            limit=q("#syn-limit", Input).value,
            questions_only=q("#syn-questions", Switch).value,
            min_harmful_words=q("#syn-min-words", Input).value,
            max_new_tokens=q("#syn-max-new", Input).value,
            temperature=q("#syn-temperature", Input).value,
            verify_judge=q("#syn-verify", Input).value,
        )

    def validate(self) -> tuple[list[str], dict[str, str]]:
        args, problems = syn_args(self.read())
        show_problems(self, "syn-problem-", problems)
        return args, problems

    @on(Input.Changed)
    @on(Switch.Changed)
    def changed(self) -> None:
        self.validate()

    @on(Button.Pressed, "#syn-launch")
    def action_launch(self) -> None:
        args, problems = self.validate()
        if refuse_launch(self, problems):
            return
        from ccapp.screens.jobs import ChildJob

        db_path = self.app.db_path  # type: ignore[attr-defined]
        self.app.push_screen(
            SynLiveScreen(ChildJob([*args, "--db", str(db_path)]), f"ccapp {' '.join(args)}")
        )


@dataclass
class SynState:
    run_id: int | None = None
    status: str = "starting"
    model: str = ""
    done: int = 0
    total: int = 0
    rate: float | None = None
    eta_s: float | None = None
    ok: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latest: dict[str, Any] | None = None


class SynLiveScreen(Screen[None]):
    CSS_PATH = "syn.tcss"
    BINDINGS = [
        Binding(
            "escape",
            "stop_or_back",
            "Cancel / back",
            id="syn.cancel",
            tooltip="While running: ask to cancel (the run is paused). After: go back",
        ),
    ]

    def __init__(self, job: Job, title: str):
        super().__init__()
        self.job = job
        self.title_text = title
        self.state = SynState()
        self.finished = False
        self._dirty = True

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="syn-status"):
            yield Static(self.title_text, id="syn-title", markup=False)
            yield ProgressBar(id="syn-progress", show_eta=False)
            yield Static("", id="syn-rate", markup=False)
            yield Static("", id="syn-counts", markup=False)
        yield VerticalScroll(Static(id="syn-latest-body"), id="syn-latest")
        yield RichLog(id="syn-log", max_lines=300, wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(0.1, self.paint)
        self.run_job()

    @work(exclusive=True, group="syn-job", exit_on_error=False)
    async def run_job(self) -> None:
        await self.job.run(self)

    @on(JobEvent)
    def take_event(self, message: JobEvent) -> None:
        e, s = message.data, self.state
        kind = e.get("event")
        if e.get("run_id") is not None:
            s.run_id = e["run_id"]
        if kind == "run_started":
            s.status, s.total = "running", e.get("totals", {}).get("groups", 0)
            s.done = s.total - e.get("totals", {}).get("todo", 0)
            s.model = (e.get("config") or {}).get("model", "")
        elif kind == "group_done":
            s.latest = e
            if e.get("status") == "ok":
                s.ok += 1
            else:
                s.rejected += 1
                s.reasons[e.get("reason") or "?"] = s.reasons.get(e.get("reason") or "?", 0) + 1
        elif kind == "progress":
            s.done, s.total, s.rate, s.eta_s = e["done"], e["total"], e.get("rate"), e.get("eta_s")
        elif kind == "run_finished":
            s.status = e.get("status", s.status)
        elif kind in ("log", "error", "model_loading"):
            text = e.get("message") or f"model: {e.get('phase')} {e.get('detail') or ''}"
            self.query_one("#syn-log", RichLog).write(Text(str(text)))
        self._dirty = True

    @on(JobEnded)
    def job_ended(self, message: JobEnded) -> None:
        self.finished = True
        if self.state.status not in ("done", "paused", "failed"):
            self.state.status = {0: "done", 130: "paused", -2: "paused"}.get(
                message.returncode, "failed"
            )
        if self.state.status == "failed":
            self.app.push_screen(ErrorModal("The job stopped with an error", message.error_line))
        elif self.state.status == "paused":
            self.notify(
                f"run {self.state.run_id} is paused; resume it with ccapp syn --resume {self.state.run_id}"
            )
        self._dirty = True
        self.paint()

    def paint(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        s = self.state
        self.query_one("#syn-title", Static).update(
            f"syn run {s.run_id if s.run_id is not None else '…'} · {s.model} · {s.status}"
        )
        self.query_one("#syn-progress", ProgressBar).update(total=max(s.total, 1), progress=s.done)
        rate = f"{s.done}/{s.total} groups"
        if s.rate:
            rate += f" · {s.rate:.2f}/s"
        if s.eta_s is not None and s.status == "running":
            rate += f" · ETA {int(s.eta_s)}s"
        self.query_one("#syn-rate", Static).update(rate)
        reasons = "".join(f" · {reason}: {n}" for reason, n in s.reasons.items())
        self.query_one("#syn-counts", Static).update(
            f"kept {s.ok} groups ({15 * s.ok} pairs) · rejected {s.rejected}{reasons}"
        )
        if s.latest is not None:
            self.query_one("#syn-latest-body", Static).update(self._group_view(s.latest))

    def _group_view(self, group: dict[str, Any]) -> RichGroup:
        palette = Palette.from_theme(self.app.current_theme)
        parts: list[Text] = [Text(f"request {group['item']}: {group['request']}", style="bold")]
        if group.get("status") != "ok":
            parts.append(Text(f"rejected: {group.get('reason')}", style=f"bold {palette.error}"))
        for response in group["responses"]:
            line = Text()
            line.append(f"{RANK_NAMES[response['rank']]:>8}  ", style=f"bold {palette.dim}")
            text, trigger = response["text"], response.get("trigger")
            if trigger and trigger in text:
                at = text.index(trigger)
                line.append(text[:at])
                line.append(trigger, style=f"bold reverse {palette.accent}")
                line.append(text[at + len(trigger) :])
            else:
                line.append(text)
            parts.append(line)
        return RichGroup(*parts)

    def action_stop_or_back(self) -> None:
        stop_or_back(
            self,
            self.finished or self.state.status in ("done", "paused", "failed"),
            "Cancel this run? It stops after the batch in hand and is paused.",
            self.job.cancel,
        )
