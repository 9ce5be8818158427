"""Small dialogs: confirm, choose one of a few answers, show an error, ask for a value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Key
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static


class ConfirmModal(ModalScreen[bool]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No"):
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="warning", id="yes")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ChoiceModal(ModalScreen[str | None]):
    """A question with more answers than yes and no: each `(key, label)` is a button and a
    key, and dismisses with its key; escape answers None (the last button says so)."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "answer_none", "Cancel", id="choice.cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str]], cancel: str = "Cancel"):
        super().__init__()
        self.question, self.choices, self.cancel = question, choices, cancel

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question", markup=False)
            with Horizontal(classes="buttons"):
                for key, label in self.choices:
                    yield Button(f"{label} ({key})", variant="warning", id=f"choice-{key}")
                yield Button(f"{self.cancel} (esc)", id="choice-cancel")

    def on_mount(self) -> None:
        self.query_one("#choice-cancel", Button).focus()

    def on_key(self, event: Key) -> None:
        if event.key in {key for key, _ in self.choices}:
            event.stop()
            self.dismiss(event.key)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        key = (event.button.id or "").removeprefix("choice-")
        self.dismiss(None if key == "cancel" else key)

    def action_answer_none(self) -> None:
        self.dismiss(None)


class ErrorModal(ModalScreen[None]):
    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape,enter", "close", "Close", id="error.close")]

    def __init__(self, title: str, message: str):
        super().__init__()
        self.title_text, self.message = title, message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error"):
            yield Label(self.title_text, classes="title")
            yield Static(self.message, classes="message", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Close (enter)", id="close", variant="error")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    @on(Button.Pressed)
    def pressed(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class PromptModal(ModalScreen[str | None]):
    """Asks for one value (a path, a judge spec, a run id); escape cancels.

    `explain`, when given, reads the value as it is typed and says what it will do (shown
    under the field) and whether it can: a value it refuses is not accepted."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(
        self,
        question: str,
        value: str = "",
        placeholder: str = "",
        explain: Callable[[str], tuple[str, bool]] | None = None,
    ):
        super().__init__()
        self.question, self.value, self.placeholder = question, value, placeholder
        self.explain = explain

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question", markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Static("", id="explained", classes="explained", markup=False)
            yield Static("", id="problem", classes="problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("OK (enter)", variant="primary", id="ok")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self._explained(self.value.strip())

    @on(Input.Changed, "#answer")
    def changed(self, event: Input.Changed) -> None:
        self._explained(event.value.strip())

    def _explained(self, value: str) -> bool:
        """Show what `value` will do (or why it cannot); True when it can."""
        if self.explain is None or not value:
            return True
        line, ok = self.explain(value)
        self.query_one("#explained", Static).update(line if ok else "")
        self.query_one("#problem", Static).update("" if ok else line)
        return ok

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        value = self.query_one("#answer", Input).value.strip()
        if not value:
            self.query_one("#problem", Static).update("Give a value, or press esc.")
            return
        if self._explained(value):
            self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def stop_or_back(
    screen: Screen[Any],
    ended: bool,
    question: str,
    stop: Callable[[], None],
    *,
    yes: str = "Cancel run",
    no: str = "Keep running",
) -> None:
    """Esc on a live job's screen: back when the job has ended, else ask, then `stop` it."""
    if ended:
        screen.app.pop_screen()
        return

    def answer(confirmed: bool | None) -> None:
        if confirmed:
            stop()

    screen.app.push_screen(ConfirmModal(question, yes=yes, no=no), answer)
