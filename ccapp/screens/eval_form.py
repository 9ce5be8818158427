"""New evaluation: a keyboard form that becomes a `ccapp eval …` child process.

The form checks what it can without loading anything (model and data specs, numbers,
the judge and its key) and shows each problem under its field before launch; the child
process checks the rest and any error it reports opens an error dialog.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import (
    Button,
    DirectoryTree,
    Footer,
    Header,
    Input,
    Label,
    Select,
    Static,
    Switch,
)

from ccapp.engines.data import data_problem
from ccapp.engines.devices import GIB, Device
from ccapp.engines.generation.models import model_problem
from ccapp.engines.generation.presets import PRESETS
from ccapp.engines.judges.registry import parse_judge_spec
from ccapp.errors import UserError
from ccapp.screens.form_problems import refuse_launch, show_problems

JUDGE_KINDS = [
    ("heuristic (offline, instant)", "heuristic"),
    ("GPT-4o (OpenAI API)", "gpt-4o"),
    ("OpenAI-compatible server", "server"),
    ("in-process HF model", "hf"),
]
DTYPES = [
    ("auto", "auto"),
    ("bfloat16", "bfloat16"),
    ("float16", "float16"),
    ("float32", "float32"),
]
BYTES = {"auto": 2, "bfloat16": 2, "float16": 2, "float32": 4}


@dataclass
class FormValues:
    model: str = "tiny"
    device: str = "auto"
    dtype: str = "auto"
    four_bit: bool = False
    judge_kind: str = "heuristic"
    judge_url: str = ""
    judge_model: str = ""
    judge_path: str = ""
    data: str = "c2-eval"
    ks: str = "10,20,30,40,50,60,70,80"
    paths: str = "20"
    max_new_tokens: str = "32"
    temperature: str = "0.8"
    top_p: str = "0.7"
    seed: str = "0"
    limit: str = ""


def judge_spec(values: FormValues) -> str:
    if values.judge_kind == "server":
        return f"openai:{values.judge_model.strip()}@{values.judge_url.strip()}"
    if values.judge_kind == "hf":
        return f"hf:{values.judge_path.strip()}"
    return values.judge_kind


def eval_args(values: FormValues) -> tuple[list[str], dict[str, str]]:
    """The `ccapp eval` arguments for the form, and the problems by field id."""
    problems: dict[str, str] = {}
    if (problem := model_problem(values.model)) is not None:
        problems["model"] = problem
    if (problem := data_problem(values.data)) is not None:
        problems["data"] = problem
    ks = [part.strip() for part in values.ks.split(",") if part.strip()]
    if not ks or not all(part.isdigit() and int(part) > 0 for part in ks):
        problems["ks"] = "positive whole numbers separated by commas, e.g. 10,20,40"
    elif len(set(ks)) != len(ks):
        problems["ks"] = "give each k once"
    numbers = {
        "paths": (values.paths, int, 1, None),
        "max_new_tokens": (values.max_new_tokens, int, 1, None),
        "temperature": (values.temperature, float, 0.0, None),
        "top_p": (values.top_p, float, 1e-9, 1.0),
        "seed": (values.seed, int, 0, None),
    }
    for name, (text, kind, low, high) in numbers.items():
        try:
            value = kind(text.strip())
        except ValueError:
            problems[name] = f"not a {'whole ' if kind is int else ''}number"
            continue
        if value < low or (high is not None and value > high):
            problems[name] = (
                f"must be between {low:g} and {high:g}" if high else f"must be at least {low:g}"
            )
    if values.limit.strip() and not (values.limit.strip().isdigit() and int(values.limit) > 0):
        problems["limit"] = "empty for all requests, or a positive whole number"
    if values.four_bit and values.device == "cpu":
        problems["four_bit"] = "4-bit needs a CUDA GPU"
    try:
        spec = parse_judge_spec(judge_spec(values)).canonical
        if spec.startswith("openai:") and "@" not in spec and not key_is_set():
            problems["judge"] = "no OpenAI key: export OPENAI_API_KEY (or [openai] api_key_file)"
    except UserError as exc:
        problems["judge"] = exc.problem
        spec = ""
    judge_model = values.judge_path.strip() if values.judge_kind == "hf" else ""
    if judge_model and (problem := model_problem(judge_model)) is not None:
        problems["judge"] = problem
    args = [
        "eval",
        "--model",
        values.model.strip(),
        "--data",
        values.data.strip(),
        "--k",
        ",".join(ks),
        "--paths",
        values.paths.strip(),
        "--max-new-tokens",
        values.max_new_tokens.strip(),
        "--temperature",
        values.temperature.strip(),
        "--top-p",
        values.top_p.strip(),
        "--seed",
        values.seed.strip(),
        "--device",
        values.device,
        "--dtype",
        values.dtype,
        "--judge",
        spec,
    ]
    if values.limit.strip():
        args += ["--limit", values.limit.strip()]
    if values.four_bit:
        args.append("--load-in-4bit")
    return args, problems


def key_is_set() -> bool:
    if os.environ.get("OPENAI_API_KEY", "").strip():
        return True
    from ccapp.config import load_settings

    try:
        key_file = load_settings().openai_api_key_file
    except UserError:
        return False
    return key_file is not None and key_file.is_file()


def fit_note(device: Device, model: str, dtype: str, four_bit: bool) -> str:
    """A rough "does it fit" for a preset on a GPU: weights × 1.2 against free memory."""
    preset = PRESETS.get(model.strip())
    if preset is None or device.kind != "cuda" or device.free_bytes is None or not preset.params_b:
        return ""
    per_param = 0.55 if four_bit else BYTES.get(dtype, 2)
    need = preset.params_b * 1e9 * per_param * 1.2
    free = device.free_bytes
    verdict = (
        "fits" if need < free * 0.8 else "tight" if need < free else "too big (try 4-bit or auto)"
    )
    return f" · needs ~{need / GIB:.0f} GiB: {verdict}"


class FolderPicker(Screen[str | None]):
    """Pick a model folder with the keyboard (enter on a folder chooses it)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel", id="picker.cancel")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Choose a model folder (a save_pretrained output); enter selects, esc cancels")
        yield DirectoryTree(Path.home(), id="picker-tree")
        yield Footer()

    @on(DirectoryTree.DirectorySelected)
    def chosen(self, event: DirectoryTree.DirectorySelected) -> None:
        self.dismiss(str(event.path))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class EvalFormScreen(Screen[None]):
    CSS_PATH = "eval_form.tcss"
    AUTO_FOCUS = "#model"  # typing starts in the form, never in the app's letter keys
    BINDINGS = [
        Binding("ctrl+s", "launch", "Launch", id="eval.launch", tooltip="Start the evaluation"),
        Binding(
            "ctrl+o",
            "pick_folder",
            "Model folder…",
            id="eval.folder",
            tooltip="Choose a local model folder",
        ),
    ]

    def __init__(self, values: FormValues | None = None):
        super().__init__()
        self.values = values or FormValues()
        self.devices: list[Device] = []

    def compose(self) -> ComposeResult:
        v = self.values
        yield Header()
        with VerticalScroll(id="form"):
            yield Static("New evaluation", classes="form-title")
            yield from self._field(
                "model",
                "Model",
                Input(
                    v.model,
                    id="model",
                    suggester=SuggestFromList(list(PRESETS), case_sensitive=False),
                    placeholder="preset, org/name or a folder (ctrl+o)",
                ),
                hint="presets: " + ", ".join(PRESETS),
            )
            yield from self._field(
                "device",
                "Device",
                Select([("auto", "auto")], value="auto", id="device", allow_blank=False),
            )
            with Horizontal(classes="row"):
                yield from self._field(
                    "dtype", "Dtype", Select(DTYPES, value=v.dtype, id="dtype", allow_blank=False)
                )
                yield from self._field("four_bit", "4-bit", Switch(v.four_bit, id="four_bit"))
            yield from self._field(
                "judge",
                "Judge",
                Select(JUDGE_KINDS, value=v.judge_kind, id="judge_kind", allow_blank=False),
            )
            with Horizontal(classes="row", id="judge-server"):
                yield Input(v.judge_url, placeholder="http://host:8000/v1", id="judge_url")
                yield Input(v.judge_model, placeholder="model name on the server", id="judge_model")
            yield Input(
                v.judge_path, placeholder="judge model: folder or Hugging Face id", id="judge_path"
            )
            yield from self._field(
                "data", "Data", Input(v.data, id="data", placeholder="c2-eval, a file or a Hub id")
            )
            yield from self._field("ks", "k (prefix words)", Input(v.ks, id="ks"))
            with Horizontal(classes="row"):
                yield from self._field("paths", "Paths", Input(v.paths, id="paths"))
                yield from self._field(
                    "max_new_tokens", "Max new tokens", Input(v.max_new_tokens, id="max_new_tokens")
                )
                yield from self._field(
                    "limit", "Limit", Input(v.limit, id="limit", placeholder="all")
                )
            with Horizontal(classes="row"):
                yield from self._field(
                    "temperature", "Temperature", Input(v.temperature, id="temperature")
                )
                yield from self._field("top_p", "top_p", Input(v.top_p, id="top_p"))
                yield from self._field("seed", "Seed", Input(v.seed, id="seed"))
            yield Button("Launch (ctrl+s)", variant="primary", id="launch")
        yield Footer()

    def _field(self, key: str, label: str, widget: Any, hint: str = "") -> ComposeResult:
        with Vertical(classes="field", id=f"field-{key}"):
            yield Label(label)
            yield widget
            if hint:
                yield Static(hint, classes="hint", markup=False)
            yield Static("", classes="problem", id=f"problem-{key}", markup=False)

    def on_mount(self) -> None:
        self._show_judge_inputs()
        self.probe_devices()
        self.validate()

    @work(exclusive=True, group="form-devices", exit_on_error=False)
    async def probe_devices(self) -> None:
        try:
            self.devices = await self.app.probe_devices()  # type: ignore[attr-defined]
        except Exception as exc:  # the form still works with auto/cpu
            self.notify(f"devices: {exc}", severity="warning")
            self.devices = []
        self._fill_devices()

    def _fill_devices(self) -> None:
        values = self.read()
        options = []
        gpus = [d for d in self.devices if d.kind == "cuda"]
        if len(gpus) > 1:
            options.append((f"auto — all {len(gpus)} GPUs", "auto"))
        for d in self.devices:
            free = f" · {d.free_bytes / GIB:.0f} GiB free" if d.free_bytes else ""
            options.append(
                (
                    f"{d.id} — {d.name}{free}{fit_note(d, values.model, values.dtype, values.four_bit)}",
                    d.id,
                )
            )
        if not options or all(value != "auto" for _, value in options):
            options.insert(0, ("auto", "auto"))
        select = self.query_one("#device", Select)
        current = select.value
        select.set_options(options)
        ids = [value for _, value in options]
        select.value = current if current in ids else (gpus[0].id if len(gpus) == 1 else ids[0])

    def read(self) -> FormValues:
        q = self.query_one
        return FormValues(
            model=q("#model", Input).value,
            device=str(q("#device", Select).value),
            dtype=str(q("#dtype", Select).value),
            four_bit=q("#four_bit", Switch).value,
            judge_kind=str(q("#judge_kind", Select).value),
            judge_url=q("#judge_url", Input).value,
            judge_model=q("#judge_model", Input).value,
            judge_path=q("#judge_path", Input).value,
            data=q("#data", Input).value,
            ks=q("#ks", Input).value,
            paths=q("#paths", Input).value,
            max_new_tokens=q("#max_new_tokens", Input).value,
            temperature=q("#temperature", Input).value,
            top_p=q("#top_p", Input).value,
            seed=q("#seed", Input).value,
            limit=q("#limit", Input).value,
        )

    def validate(self) -> tuple[list[str], dict[str, str]]:
        args, problems = eval_args(self.read())
        show_problems(self, "problem-", problems)
        judge_note = self.query_one("#problem-judge", Static)
        if "judge" not in problems and self.read().judge_kind == "gpt-4o":
            judge_note.update("OpenAI key: set ✓")
            judge_note.display = True
            judge_note.add_class("ok")
        else:
            judge_note.remove_class("ok")
        return args, problems

    @on(Input.Changed)
    @on(Switch.Changed)
    def changed(self) -> None:
        self.validate()

    @on(Select.Changed)
    def select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "judge_kind":
            self._show_judge_inputs()
        if event.select.id == "dtype" and self.devices:
            self._fill_devices()
        self.validate()

    def _show_judge_inputs(self) -> None:
        kind = self.query_one("#judge_kind", Select).value
        self.query_one("#judge-server").display = kind == "server"
        self.query_one("#judge_path").display = kind == "hf"

    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        args, problems = self.validate()
        if refuse_launch(self, problems):
            return
        from ccapp.screens.jobs import ChildJob
        from ccapp.screens.live_run import LiveRunScreen

        db_path = self.app.db_path  # type: ignore[attr-defined]
        job = ChildJob([*args, "--db", str(db_path)])
        self.app.push_screen(LiveRunScreen(job, f"ccapp {' '.join(args)}", db_path))

    def action_pick_folder(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.query_one("#model", Input).value = path

        self.app.push_screen(FolderPicker(), chosen)
