"""New evaluation: a keyboard form that becomes a `ccapp eval …` child process.

The form checks what it can without loading anything (model and data specs, numbers,
the judge and its key) and shows each problem under its field before launch; the child
process checks the rest and any error it reports opens an error dialog.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
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

from ccapp.engines.c2eval.config import EvalConfig
from ccapp.engines.data import data_problem
from ccapp.engines.devices import GIB, Device
from ccapp.engines.generation.models import model_problem
from ccapp.engines.generation.presets import PRESETS
from ccapp.engines.judges.registry import parse_judge_spec
from ccapp.engines.options import Declared
from ccapp.errors import UserError
from ccapp.screens.base import AppScreen
from ccapp.screens.form_problems import refuse_launch, show_problems
from ccapp.screens.option_form import (
    OptionTexts,
    Text,
    compose_row,
    field_box,
    form_command,
    form_rows,
    option_widget,
    read_values,
    read_widgets,
    row_order,
)

JUDGE_KINDS = [
    ("heuristic (offline, instant)", "heuristic"),
    ("GPT-4o (OpenAI API)", "gpt-4o"),
    ("OpenAI-compatible server", "server"),
    ("in-process HF model", "hf"),
]
BYTES = {"auto": 2, "bfloat16": 2, "float16": 2, "float32": 4}
JUDGE = "judge"  # the form's own part: the judge's kind and its server or model
# The form's rows, top to bottom (rows of fields EvalConfig declares, and the judge).
ROWS = ("model", "device", "precision", JUDGE, "data", "ks", "how much", "sampling")


class FormValues(OptionTexts):
    """The form as typed: EvalConfig's labelled fields, and the judge's parts, which the form
    composes into one --judge."""

    config = EvalConfig
    extra: ClassVar[Mapping[str, Text]] = {
        "judge_kind": "heuristic",
        "judge_url": "",
        "judge_model": "",
        "judge_path": "",
    }


def judge_spec(values: FormValues) -> str:
    if values.judge_kind == "server":
        return f"openai:{values.judge_model.strip()}@{values.judge_url.strip()}"
    if values.judge_kind == "hf":
        return f"hf:{values.judge_path.strip()}"
    return values.judge_kind


def eval_args(values: FormValues) -> tuple[list[str], dict[str, str]]:
    """The `ccapp eval` arguments for the form, and the problems by field id."""
    try:
        spec = parse_judge_spec(judge_spec(values)).canonical
    except UserError as exc:
        judge_problem: str | None = exc.problem
        spec = ""
    else:
        judge_problem = None
        if spec.startswith("openai:") and "@" not in spec and not key_is_set():
            judge_problem = "no OpenAI key: export OPENAI_API_KEY (or [openai] api_key_file)"
    cls = values.config
    parsed, problems = read_values(cls, values.texts(), {"judge": spec or "heuristic"})
    if (problem := model_problem(values.model)) is not None:
        problems["model"] = problem
    if (problem := data_problem(values.data)) is not None:
        problems["data"] = problem
    if parsed.get("load_in_4bit") and parsed.get("device") == "cpu":
        problems["load_in_4bit"] = "4-bit needs a CUDA GPU"
    judge_model = values.judge_path.strip() if values.judge_kind == "hf" else ""
    if judge_model and (problem := model_problem(judge_model)) is not None:
        judge_problem = problem
    if judge_problem is not None:
        problems["judge"] = judge_problem
    return form_command("eval", cls, parsed | {"judge": spec}), problems


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


class FolderPicker(AppScreen[str | None]):
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


class EvalFormScreen(AppScreen[None]):
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
        rows = form_rows(self.values.config)
        yield Header()
        with VerticalScroll(id="form"):
            yield Static("New evaluation", classes="form-title")
            for key in row_order(self.values.config, ROWS, own=[JUDGE]):
                if key == JUDGE:
                    yield from self._judge()
                else:
                    yield from compose_row(rows[key], self._option)
            yield Button("Launch (ctrl+s)", variant="primary", id="launch")
        yield Footer()

    def _judge(self) -> ComposeResult:
        """The judge: a kind, and a server's URL and model or a model's path (one --judge)."""
        v = self.values
        yield from field_box(
            "Judge",
            Select(JUDGE_KINDS, value=v.judge_kind, id="judge_kind", allow_blank=False),
            "problem-judge",
            box_id="field-judge",
        )
        with Horizontal(classes="row", id="judge-server"):
            yield Input(v.judge_url, placeholder="http://host:8000/v1", id="judge_url")
            yield Input(v.judge_model, placeholder="model name on the server", id="judge_model")
        yield Input(
            v.judge_path, placeholder="judge model: folder or Hugging Face id", id="judge_path"
        )

    def _option(self, d: Declared) -> ComposeResult:
        """A declared field of EvalConfig; its widget's id is the field's name."""
        extra: dict[str, Any] = {}
        hint = ""
        if d.name == "model":
            extra["suggester"] = SuggestFromList(list(PRESETS), case_sensitive=False)
            hint = "presets: " + ", ".join(PRESETS)
        yield from field_box(
            d.option.label,
            option_widget(d, getattr(self.values, d.name), d.name, **extra),
            f"problem-{d.name}",
            hint=hint,
            box_id=f"field-{d.name}",
        )

    def on_mount(self) -> None:
        self._show_judge_inputs()
        self.probe_devices()
        self.validate()

    @work(exclusive=True, group="form-devices", exit_on_error=False)
    async def probe_devices(self) -> None:
        try:
            self.devices = await self.services.probe_devices()
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
                    f"{d.id} — {d.name}{free}"
                    f"{fit_note(d, values.model, values.dtype, values.load_in_4bit)}",
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
        return type(self.values)(
            **read_widgets(self, self.values.config, str),
            judge_kind=str(q("#judge_kind", Select).value),
            judge_url=q("#judge_url", Input).value,
            judge_model=q("#judge_model", Input).value,
            judge_path=q("#judge_path", Input).value,
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

        db_path = self.services.db_path
        job = ChildJob([*args, "--db", str(db_path)])
        self.app.push_screen(LiveRunScreen(job, f"ccapp {' '.join(args)}", db_path))

    def action_pick_folder(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.query_one("#model", Input).value = path

        self.app.push_screen(FolderPicker(), chosen)
