"""The terminal app: wires modes, bindings, commands and the theme; screens live in ccapp/screens.

The app never imports torch: jobs and device probes run as child processes of the CLI, and
the store is read directly (SQLite is the shared truth).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from ccapp.engines.devices import Device
from ccapp.screens.base import Services
from ccapp.screens.commands import CcappCommands
from ccapp.screens.devices_probe import probe_in_child
from ccapp.screens.eval_form import EvalFormScreen
from ccapp.screens.history import HistoryScreen
from ccapp.screens.home import HomeScreen
from ccapp.screens.live_base import LiveJobScreen
from ccapp.screens.modals import ChoiceModal, ConfirmModal
from ccapp.screens.syn import SynFormScreen
from ccapp.screens.train import TrainFormScreen
from ccapp.theme import CCAPP_THEME

DeviceProbe = Callable[[], Awaitable[list[Device]]]


FORM_MODES = ("eval", "syn", "train")  # modes whose base screen is a job's form


def mode_binding(keys: str, mode: str, text: str, tooltip: str) -> Binding:
    """A mode key: F-key and letter, shown as `F2/e`, id `app.MODE`."""
    fkey, letter = keys.split(",")
    return Binding(
        keys,
        f"go('{mode}')",
        text,
        key_display=f"{fkey.upper()}/{letter}",
        show=False,  # the mode bar under every footer shows them (screens.widgets.ModeBar)
        id=f"app.{mode}",
        tooltip=tooltip,
    )


class CcappApp(App[None]):
    TITLE = "ccapp"
    SUB_TITLE = "course-correction, measured"
    MODES = {
        "home": HomeScreen,
        "eval": EvalFormScreen,
        "syn": SynFormScreen,
        "train": TrainFormScreen,
        "history": HistoryScreen,
    }
    DEFAULT_MODE = "home"
    # Textual's toasts are at most half the screen wide: 38 columns at 80, where a report's
    # path broke over four lines. Wider, up to the 72 columns a message reads well at.
    CSS = """
    Toast {
        width: 72;
        max-width: 90%;
    }
    """
    COMMANDS = App.COMMANDS | {CcappCommands}
    # F-keys switch modes from anywhere, even while typing in a form; the letters do the
    # same where no text field has the focus (an Input keeps the letters it is typed).
    BINDINGS = [
        mode_binding("f1,h", "home", "Home", "Store, devices and runs"),
        mode_binding("f2,e", "eval", "Evaluate", "A new C2-Eval run"),
        mode_binding("f3,r", "history", "Runs", "Browse, compare, export"),
        mode_binding("f4,s", "syn", "Synthesize", "C2-Syn preference pairs"),
        mode_binding("f5,t", "train", "Train", "DPO on synthesized pairs"),
        Binding(
            "f6,l",
            "show_job",
            "Job",
            key_display="F6/l",
            show=False,
            id="app.job",
            tooltip="The live view of the running (or last) job",
        ),
        Binding(
            "q",
            "quit",
            "Quit",
            show=False,
            id="app.quit",
            tooltip="Leave ccapp (ctrl+q works everywhere)",
        ),
    ]

    def __init__(self, db_path: Path, *, probe_devices: DeviceProbe = probe_in_child):
        super().__init__()
        self.db_path = db_path
        self.probe_devices = probe_devices
        # Every job's live screen, oldest first. Each is installed, so leaving it (a mode
        # key, esc) never ends its job: it stays one key (F6) away until a newer one ends.
        self.job_screens: list[LiveJobScreen[Any]] = []

    def on_mount(self) -> None:
        self.register_theme(CCAPP_THEME)
        self.theme = "ccapp"
        self.screen_change_signal.subscribe(self, self._screen_changed)

    # -- modes: a mode key always reaches that mode's own page, fresh ---------------------------

    def action_go(self, mode: str) -> None:
        """Show `mode`'s base page: History's list (never a run's page), Home, or a job's form.

        What was pushed on top (a run's page, a live view) is left; a live view's job keeps
        running (it is installed) and F6 brings it back. A form that launched a job, or was
        left for a page it opened, is replaced by a new one (it remembers the last values),
        so F2 never shows a finished run. Each page re-reads the store when it is shown.
        """
        above = self._screen_stacks.get(mode, [])[1:]
        if mode in FORM_MODES and above:  # a new form: the mode starts over, from its class
            if self.current_mode == mode:
                self.switch_mode("home" if mode != "home" else "history")
            self.remove_mode(mode)
            self.add_mode(mode, self.MODES[mode])
        self.switch_mode(mode)
        for _ in self.screen_stack[1:]:
            self.pop_screen()
        running = [s for s in above if isinstance(s, LiveJobScreen) and not s.job_over]
        if running:
            self.notify(f"{running[-1].title_text} is still running — F6 shows it", title="Job")

    def action_show_job(self) -> None:
        """The running job's live view (else the last job's), wherever it was left; from one
        running job's view, the next running job's."""
        if not self.job_screens:
            self.notify(
                "No job has run in this session yet: F2 starts an evaluation, F4 a synthesis, "
                "F5 a training; F3 lists the runs of earlier sessions."
            )
            return
        running = self.running_jobs()
        target = running[-1] if running else self.job_screens[-1]
        if self.screen in running and len(running) > 1:
            target = running[(running.index(self.screen) + 1) % len(running)]
        for mode, stack in self._screen_stacks.items():
            if target in stack:
                self.switch_mode(mode)
                while self.screen is not target:
                    self.pop_screen()
                return
        self.push_screen(target)

    def running_jobs(self) -> list[LiveJobScreen[Any]]:
        return [s for s in self.job_screens if not s.job_over]

    def _screen_changed(self, screen: Screen[Any]) -> None:
        """Install each new live view (so no mode key ends its job); let old finished ones go."""
        if isinstance(screen, LiveJobScreen) and screen not in self.job_screens:
            self.install_screen(screen, f"job-{id(screen)}")
            self.job_screens.append(screen)
            self.refresh_bindings()
        stacked = {id(s) for stack in self._screen_stacks.values() for s in stack}
        for old in self.job_screens[:-1]:
            if old.job_over and id(old) not in stacked:
                self.uninstall_screen(old)
                self.job_screens.remove(old)
                old.remove()

    # -- quitting: never ends a job without asking -----------------------------------------------

    async def action_quit(self) -> None:
        running = self.running_jobs()
        if not running:
            self.exit()
            return

        def answer(choice: str | None) -> None:
            if choice == "b":  # the child runs in its own session: leaving it is enough
                self.exit()
            elif choice == "s":
                for screen in running:
                    screen.stop_job()
                self.notify("stopping the job at its next step, then quitting…", title="Quit")
                self.set_interval(0.1, self._exit_when_stopped)

        names = job_names(running)
        one = len(running) == 1
        self.push_screen(
            ChoiceModal(
                f"{'A job is' if one else 'Jobs are'} running ({names}) — stop "
                f"{'it' if one else 'them'} (resumable: History → r) and quit, or quit and "
                f"keep {'it' if one else 'them'} running in the background? A job left "
                "running goes on writing to the store; `ccapp runs list` and History show it.",
                [("s", "Stop and quit"), ("b", "Quit, keep running")],
                cancel="Stay",
            ),
            answer,
        )

    def _exit_when_stopped(self) -> None:
        if not self.running_jobs():
            self.exit()

    def open_run(self, run_id: int) -> None:
        from ccapp.screens.run_page import page_of

        self.push_screen(page_of(run_id, self.db_path))

    def launch(self, live: LiveJobScreen[Any]) -> None:
        """Show a new job's live view, which starts it; while another job runs, ask first:
        both share this machine, so each runs slower."""
        running = self.running_jobs()
        if not running:
            self.push_screen(live)
            return
        one = len(running) == 1
        question = (
            f"{job_names(running)} {'is' if one else 'are'} still running. Start "
            f"{live.title_text} beside {'it' if one else 'them'}? They share this machine, so "
            "each runs slower; F6 goes from one job's live view to the next."
        )

        def answer(yes: bool | None) -> None:
            if yes:
                self.push_screen(live)

        self.push_screen(ConfirmModal(question, yes="Start beside", no="Not now"), answer)

    def start_demo(self) -> None:
        """The demo's form first: it says what the demo costs and asks what it runs on."""
        from ccapp.screens.demo import DemoFormScreen

        self.push_screen(DemoFormScreen())


def job_names(jobs: list[LiveJobScreen[Any]]) -> str:
    """Running jobs as a sentence names them: their runs, or their command lines."""
    return ", ".join(
        f"run {s.state.run_id}" if s.state.run_id is not None else s.title_text for s in jobs
    )


if TYPE_CHECKING:  # mypy checks here that the app gives screens all they use (screens/base.py)
    _PROVIDES_SERVICES: type[Services] = CcappApp


def run_app(db: str | None = None) -> int:
    """Open (and migrate) the store first, so store errors are reported like any CLI error."""
    from ccapp.config import resolve_db
    from ccapp.store import Store

    path = resolve_db(db)
    Store.open(path).close()
    CcappApp(path).run()
    return 0
