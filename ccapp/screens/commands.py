"""Command palette entries, named "Category: action"."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ccapp.screens.base import services_of
from ccapp.store import Store, runs

RECENT_RUNS = 20
MODE_COMMANDS = (
    ("Home: show the home screen", "home", "store, devices, runs"),
    ("Eval: new evaluation", "eval", "a new form for ccapp eval"),
    ("History: browse runs", "history", "every run in the store"),
    ("Syn: synthesize preference pairs", "syn", "the form for ccapp syn"),
    ("Train: DPO on synthesized pairs", "train", "the form for ccapp train"),
)


class CcappCommands(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app = self.app
        services = services_of(app)
        # Each mode's entry does what its key does (the app's `go`): the mode's own page,
        # a new form for a job's mode, never a screen left on top of it.
        commands: list[tuple[str, Callable[[], Any], str]] = [
            (name, partial(app.run_action, f"go('{mode}')"), help_text)
            for name, mode, help_text in MODE_COMMANDS
        ]
        commands += [
            (
                "Demo: run the whole loop on a toy model",
                services.start_demo,
                "eval → syn → DPO → eval, offline, minutes on a CPU",
            ),
        ]
        try:
            with Store.open(services.db_path) as store:
                recent = runs.list_runs(store, limit=RECENT_RUNS)
        except Exception:  # the palette must open even when the store cannot be read
            recent = []
        for run in recent:
            commands.append(
                (
                    f"Run: open {run.id} ({run.kind.value} {run.model} {runs.status_text(run)})",
                    partial(services.open_run, run.id),
                    run.created_at,
                )
            )
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
