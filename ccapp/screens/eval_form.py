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

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DirectoryTree, Header, Input, Label, Select, Static

from ccapp.engines.c2eval.config import EvalConfig
from ccapp.engines.data import data_problem
from ccapp.engines.devices import GIB, Device
from ccapp.engines.generation.models import model_problem
from ccapp.engines.generation.presets import PRESETS
from ccapp.engines.judges.registry import parse_judge_spec
from ccapp.engines.options import Declared
from ccapp.errors import UserError
from ccapp.screens.base import AppScreen
from ccapp.screens.job_form import JobFormScreen, found, four_bit_problem
from ccapp.screens.jobs import Job
from ccapp.screens.live_base import LiveJobScreen
from ccapp.screens.option_form import OptionTexts, Text, field_box, form_command, read_values
from ccapp.screens.widgets import footer

JUDGE_KINDS = [
    ("heuristic (offline, instant)", "heuristic"),
    ("GPT-4o (OpenAI API)", "gpt-4o"),
    ("OpenAI-compatible server", "server"),
    ("in-process HF model", "hf"),
]
BYTES = {"auto": 2, "bfloat16": 2, "float16": 2, "float32": 4}
JUDGE = "judge"  # the form's own part: the judge's kind and its server or model


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
    problems |= found(data=data_problem(values.data), load_in_4bit=four_bit_problem(parsed))
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


def picker_start() -> Path:
    """Where the folder picker opens: the folder ccapp trains models into, once it has one
    (what a trained model's page asks to evaluate), else the current folder."""
    from ccapp.config import paths

    trained = paths().data_dir / "models"
    return trained if trained.is_dir() else Path.cwd()


class FolderPicker(AppScreen[str | None]):
    """Pick a model folder with the keyboard (enter on a folder chooses it; backspace goes
    up a folder, so any folder is reachable from where it opens)."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Cancel", id="picker.cancel"),
        Binding("backspace", "up", "Up a folder", id="picker.up"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(
            "Choose a model folder (a save_pretrained output): enter selects, backspace goes "
            "up a folder, esc cancels"
        )
        yield DirectoryTree(picker_start(), id="picker-tree")
        yield from footer()

    def action_up(self) -> None:
        tree = self.query_one("#picker-tree", DirectoryTree)
        here = Path(tree.path).resolve()
        if here.parent != here:
            tree.path = here.parent

    @on(DirectoryTree.DirectorySelected)
    def chosen(self, event: DirectoryTree.DirectorySelected) -> None:
        self.dismiss(str(event.path))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class EvalFormScreen(JobFormScreen[FormValues]):
    CSS_PATH = "eval_form.tcss"
    AUTO_FOCUS = "#model"  # typing starts in the form, never in the app's letter keys
    LAUNCH_TIP = "Start the evaluation"
    BINDINGS = [
        Binding(
            "ctrl+o",
            "pick_folder",
            "Model folder…",
            id="eval.folder",
            tooltip="Choose a local model folder",
        ),
    ]

    VALUES = FormValues
    FORM_TITLE = "New evaluation"
    # The form's rows, top to bottom (rows of fields EvalConfig declares, and the judge).
    ROWS = ("model", "device", "precision", JUDGE, "data", "ks", "how much", "sampling")
    OWN_ROWS = (JUDGE,)
    PROBES_DEVICES = True

    def own_row(self, key: str) -> ComposeResult:
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

    def hint(self, d: Declared) -> str:
        return "presets: " + ", ".join(PRESETS) if d.name == "model" else super().hint(d)

    def on_mount(self) -> None:  # before the form's own: probing and checking
        self._show_judge_inputs()

    def devices_unknown(self, error: Exception) -> None:
        self.notify(f"devices: {error}", severity="warning")
        self.devices = []
        self.fill_devices()

    def fill_devices(self) -> None:
        """Each device with its free memory and whether the model fits; auto (all GPUs)."""
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

    def own_texts(self) -> Mapping[str, Text]:
        q = self.query_one
        return {
            "judge_kind": str(q("#judge_kind", Select).value),
            "judge_url": q("#judge_url", Input).value,
            "judge_model": q("#judge_model", Input).value,
            "judge_path": q("#judge_path", Input).value,
        }

    def job_args(self, values: FormValues) -> tuple[list[str], dict[str, str]]:
        return eval_args(values)

    def validate(self) -> tuple[list[str], dict[str, str]]:
        args, problems = super().validate()
        judge_note = self.query_one("#problem-judge", Static)
        if "judge" not in problems and self.read().judge_kind == "gpt-4o":
            judge_note.update("OpenAI key: set ✓")
            judge_note.display = True
            judge_note.add_class("ok")
        else:
            judge_note.remove_class("ok")
        return args, problems

    @on(Select.Changed)
    def select_changed(self, event: Select.Changed) -> None:  # before the form's check
        if event.select.id == "judge_kind":
            self._show_judge_inputs()
        if event.select.id == "dtype" and self.devices:
            self.fill_devices()

    def _show_judge_inputs(self) -> None:
        kind = self.query_one("#judge_kind", Select).value
        self.query_one("#judge-server").display = kind == "server"
        self.query_one("#judge_path").display = kind == "hf"

    def live_screen(self, job: Job, title: str, db_path: Path) -> LiveJobScreen[Any]:
        from ccapp.screens.live_run import LiveRunScreen

        return LiveRunScreen(job, title, db_path)

    def action_pick_folder(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.query_one("#model", Input).value = path

        self.app.push_screen(FolderPicker(), chosen)
