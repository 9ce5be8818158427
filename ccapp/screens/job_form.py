"""The screen of a job's form (eval, syn, train), written once: the declared fields in the
form's rows, their problems shown under them as the user types, the device choices probed
from the machine, and a launch that starts `ccapp JOB …` as a child on the job's live screen.

Each form says only what is its own: its values (OptionTexts), title, rows and id prefix,
the checks beyond the declarations (`job_args`), its own parts and its live screen.
Textual calls a message's handlers in every class of the screen's MRO, the form's first:
a form adds to this screen's handlers (e.g. on mount, on a select change) rather than
replacing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.suggester import SuggestFromList
from textual.widgets import Button, Header, Input, Select, Static, Switch

from ccapp.engines.devices import Device
from ccapp.engines.generation.presets import PRESETS
from ccapp.engines.options import Declared
from ccapp.screens.base import AppScreen
from ccapp.screens.form_memory import forget, recall, remember
from ccapp.screens.form_problems import field_label, refuse_launch, show_problems
from ccapp.screens.jobs import Job
from ccapp.screens.live_base import LiveJobScreen
from ccapp.screens.option_form import (
    OptionTexts,
    Text,
    compose_row,
    field_box,
    form_fields,
    form_rows,
    option_widget,
    read_widgets,
    row_order,
)
from ccapp.screens.widgets import footer

V = TypeVar("V", bound=OptionTexts)


def found(**problems: str | None) -> dict[str, str]:
    """The problems a form found beyond the declarations, by field (None: none there); a
    form sets them over what the declarations said of those fields."""
    return {name: text for name, text in problems.items() if text is not None}


def four_bit_problem(values: Mapping[str, Any]) -> str | None:
    """4-bit weights load on a CUDA GPU only."""
    if values.get("load_in_4bit") and values.get("device") == "cpu":
        return "4-bit needs a CUDA GPU"
    return None


def launch_binding(screen: str, tooltip: str) -> Binding:
    """A form's ctrl+s: launch the job (its button says the key)."""
    return Binding("ctrl+s", "launch", "Launch", id=f"{screen}.launch", tooltip=tooltip)


class JobFormScreen(AppScreen[None], Generic[V]):
    """A job's form. Its ids: `{ID_PREFIX}form` (the scroll), `{ID_PREFIX}NAME` (a field's
    widget), `{ID_PREFIX}problem-NAME` and `{ID_PREFIX}field-NAME` (its problem line and
    box), `{ID_PREFIX}launch` (the button)."""

    VALUES: ClassVar[type[OptionTexts]]  # the form's values, as typed
    FORM_TITLE: ClassVar[str]
    ROWS: ClassVar[tuple[str, ...]]  # the rows, top to bottom (see option_form.row_order)
    OWN_ROWS: ClassVar[tuple[str, ...]] = ()  # rows of the screen's own parts (`own_row`)
    ID_PREFIX: ClassVar[str] = ""
    PROBES_DEVICES: ClassVar[bool] = False  # the config has a device select to fill
    # The form's memory (ccapp.screens.form_memory): a new form starts from the values last
    # launched, but for these fields, which name runs of this store and would go stale.
    FORGETS: ClassVar[tuple[str, ...]] = ()
    LAUNCH_TIP: ClassVar[str] = ""  # what ctrl+s does, e.g. "Start synthesizing"
    # The values' `ccapp JOB` arguments and problems, and the screen that shows the job.
    # (Any: a function kept on a class and a screen class called with a job's arguments
    # are more than ClassVar can say to mypy.)
    ARGS: ClassVar[Any]
    LIVE_SCREEN: ClassVar[Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A form's defaults follow from its ID_PREFIX (`syn-`): the forms' stylesheet
        job_form.tcss and its own `syn.tcss` beside its module, focus on its first row's field, and ctrl+s to launch (`syn.launch`;
        without a prefix, the class name's: EvalFormScreen → `eval.launch`)."""
        name = cls.ID_PREFIX.rstrip("-")
        own = cls.__dict__.get("CSS_PATH") or (f"{name}.tcss" if name else None)
        cls.CSS_PATH = ["job_form.tcss", *([own] if own else [])]
        if name and "AUTO_FOCUS" not in cls.__dict__:
            cls.AUTO_FOCUS = f"#{cls.ID_PREFIX}{cls.ROWS[0]}"
        if cls.LAUNCH_TIP:
            own = cls.__dict__.get("BINDINGS", [])
            cls.BINDINGS = [launch_binding(cls.form_name(), cls.LAUNCH_TIP), *own]
        super().__init_subclass__(**kwargs)

    def __init__(self, values: V | None = None):
        """A new form starts from the values last launched (values given: from those)."""
        super().__init__()
        if values is None:
            values = cast(V, forget(recall(self.form_name(), self.VALUES), self.FORGETS))
        self.values: V = values
        self.devices: list[Device] = []

    @classmethod
    def form_name(cls) -> str:
        """The form's name (`eval`, `syn`, `train`): its memory file's and its keys'."""
        return cls.ID_PREFIX.rstrip("-") or cls.__name__.removesuffix("FormScreen").lower()

    def widget_id(self, name: str) -> str:
        """The id of a declared field's widget."""
        return f"{self.ID_PREFIX}{name}"

    def compose(self) -> ComposeResult:
        config = self.values.config
        rows = form_rows(config)
        yield Header()
        with VerticalScroll(id=f"{self.ID_PREFIX}form", classes="form"):
            yield Static(self.FORM_TITLE, classes="form-title")
            for key in row_order(config, self.ROWS, own=self.OWN_ROWS):
                if key in self.OWN_ROWS:
                    yield from self.own_row(key)
                else:
                    yield from compose_row(rows[key], self.option_field)
            yield Button(
                "Launch (ctrl+s)", variant="primary", id=f"{self.ID_PREFIX}launch", classes="launch"
            )
        yield from footer()

    def own_row(self, key: str) -> ComposeResult:
        """The widgets of one of the screen's own rows (a form with OWN_ROWS says them)."""
        raise KeyError(f"{type(self).__name__} has no own row {key}")

    def option_field(self, d: Declared) -> ComposeResult:
        """A declared field in its box; a model field suggests the presets as one types."""
        extra: dict[str, Any] = {}
        if d.name == "model":
            extra["suggester"] = SuggestFromList(list(PRESETS), case_sensitive=False)
        yield from field_box(
            d.option.label,
            option_widget(d, getattr(self.values, d.name), self.widget_id(d.name), **extra),
            f"{self.ID_PREFIX}problem-{d.name}",
            hint=self.hint(d),
            box_id=f"{self.ID_PREFIX}field-{d.name}",
        )

    def hint(self, d: Declared) -> str:
        """A line under a field's widget ("": none); a declared note follows the text."""
        if d.option.note is not None:
            return d.option.note(str(getattr(self.values, d.name) or ""))
        return ""

    def show_notes(self, values: V) -> None:
        """Each declared note under its field, for the text typed now."""
        for d in form_fields(values.config):
            if d.option.note is not None:
                box = self.query_one(f"#{self.ID_PREFIX}field-{d.name}")
                box.query_one(".hint", Static).update(d.option.note(str(getattr(values, d.name))))

    def on_mount(self) -> None:
        if self.PROBES_DEVICES:
            self.probe_devices()
        self.validate()
        # focusing the first field scrolled the title out of view: the form opens at its top
        scroll = self.query_one(f"#{self.ID_PREFIX}form", VerticalScroll)
        self.call_after_refresh(scroll.scroll_home, animate=False)

    @work(exclusive=True, group="form-devices", exit_on_error=False)
    async def probe_devices(self) -> None:
        """The machine's devices, learnt in a child process (the app never imports torch)."""
        try:
            self.devices = await self.services.probe_devices()
        except Exception as exc:  # the form still works with auto/cpu
            self.devices_unknown(exc)
            return
        self.fill_devices()

    def devices_unknown(self, error: Exception) -> None:
        """The probe failed: the device select keeps its declared choices."""

    def fill_devices(self) -> None:
        """The device select offers auto and each probed device."""
        options = [("auto", "auto")] + [(f"{d.id} — {d.name}", d.id) for d in self.devices]
        select = self.query_one(f"#{self.widget_id('device')}", Select)
        select.set_options(options)
        select.value = "auto"

    def own_texts(self) -> Mapping[str, Text]:
        """What the screen's own parts hold now (the values' `extra` fields)."""
        return {}

    def read(self) -> V:
        """The form's values as typed now."""
        texts = read_widgets(self, self.values.config, self.widget_id)
        return type(self.values)(**texts, **self.own_texts())

    def job_args(self, values: V) -> tuple[list[str], dict[str, str]]:
        """The `ccapp JOB` arguments for the values, and the problems by field (the form's
        ARGS function, which tests call without a screen)."""
        args: tuple[list[str], dict[str, str]] = type(self).ARGS(values)
        return args

    def validate(self) -> tuple[list[str], dict[str, str]]:
        """Checks the form and shows each problem under its field."""
        values = self.read()
        args, problems = self.job_args(values)
        show_problems(self, f"{self.ID_PREFIX}problem-", problems)
        self.show_notes(values)
        return args, problems

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def changed(self) -> None:
        self.validate()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        if event.button.id == f"{self.ID_PREFIX}launch":
            self.action_launch()

    def action_launch(self) -> None:
        """Launch the job, remembering the values of a launch that goes ahead."""
        args, problems = self.validate()
        labels = {
            name: field_label(self, f"{self.ID_PREFIX}field-{name}", name) for name in problems
        }
        if refuse_launch(self, problems, labels):
            return
        remember(self.form_name(), forget(self.read(), self.FORGETS))
        from ccapp.screens.jobs import ChildJob

        db_path = self.services.db_path
        job = ChildJob([*args, "--db", str(db_path)])
        self.services.launch(self.live_screen(job, f"ccapp {' '.join(args)}", db_path))

    def live_screen(self, job: Job, title: str, db_path: Path) -> LiveJobScreen[Any]:
        """The screen that shows the launched job."""
        screen: LiveJobScreen[Any] = self.LIVE_SCREEN(job, title, db_path)
        return screen
