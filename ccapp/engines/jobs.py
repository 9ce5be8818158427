"""What every job (eval, syn, train) does around its own work: one lifecycle for all three.

A job owns a store, a sink and a cancel event, and the run it created or claimed. Starting
stores a run; resuming reopens one of its kind, keeps the settings that decide its results,
and claims it for this process. However the work ends, the run is left as `--resume` expects
it: paused when cancelled (with the command that carries it on), failed with a one-line
reason otherwise. The jobs differ only in the hooks below.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

from ccapp.engines.events import (
    EVENTS_VERSION,
    ErrorEvent,
    NullSink,
    RunFinished,
    RunStarted,
    Sink,
)
from ccapp.engines.generation.types import Cancelled
from ccapp.engines.options import from_stored, keep_given, refuse_other_settings
from ccapp.errors import UserError
from ccapp.store import RunKind, RunStatus, Store, runs
from ccapp.store.records import Run


class JobConfig(Protocol):
    """A job's declared config (a dataclass of ccapp.engines.options declarations)."""

    def check(self, given: Collection[str] | None = None) -> None: ...


C = TypeVar("C", bound=JobConfig)


class RunJob(Generic[C]):
    """The base of Evaluation, Synthesis and Training: their runs' start, resume and end."""

    kind: RunKind
    config_type: type[C]
    when_done: str  # what to do instead of resuming a finished run
    keep_settings_fix = "resume without those options, or start a new run"
    cancelled = "cancelled"  # why a cancelled run is paused, as its error says

    def __init__(
        self,
        store: Store,
        sink: Sink | None = None,
        cancel: threading.Event | None = None,
        *,
        main_process: bool = True,
    ):
        self.store = store
        self.sink = sink or NullSink()
        self.cancel = cancel or threading.Event()
        self.main_process = main_process  # under accelerate, only rank 0 writes the store
        self.run: Run | None = None

    # -- resuming -------------------------------------------------------------------------

    def _reopen(self, run_id: int) -> tuple[Run, C]:
        """The stored run to resume, of this job's kind and not done, and its config."""
        run = runs.resumable_run(self.store, run_id, self.kind, when_done=self.when_done)
        return run, from_stored(self.config_type, run.config)

    def _keep_settings(self, run_id: int, config: C, overrides: Mapping[str, Any]) -> C:
        """The stored config with the values given on resume that may change; a given
        result-deciding setting that differs from the run's is refused."""
        refuse_other_settings(run_id, config, overrides, fix=self.keep_settings_fix)
        config = replace(config, **keep_given(config, overrides))  # type: ignore[type-var]
        config.check(given=overrides)
        return config

    def _claim(self, run_id: int, config_changes: Mapping[str, Any] | None = None) -> None:
        """Mark the run as this process's (refused while another one runs it), merging facts
        learnt since it stopped into its config, and hold it as `self.run`."""
        if self.main_process:
            runs.claim(self.store, run_id)
            if config_changes:
                runs.update_config(self.store, run_id, config_changes)
        self.run = runs.get_run(self.store, run_id)

    # -- the run's events and end ---------------------------------------------------------

    def _started(self, totals: dict[str, Any]) -> None:
        """The work begins (the model is loaded): record the run's provenance, and say so."""
        if self.run is not None and self.main_process:
            from ccapp.engines.provenance import record

            self.run = record(self.store, self.run)
        self.sink.emit(
            RunStarted(
                v=EVENTS_VERSION,
                kind=self.kind.value,
                config=self.run.config if self.run else {},
                totals=totals,
            )
        )

    def _finish(self, metrics: dict[str, Any]) -> Run:
        """Store the run as done with its metrics, and say so."""
        run = runs.set_status(self.store, self._run_id, RunStatus.DONE, metrics=metrics)
        self.run = run
        self.sink.emit(RunFinished(status=run.status.value, metrics=metrics))
        return run

    @contextmanager
    def _recording(self) -> Iterator[None]:
        """Around the work on a stored run: however it ends early, the store says how."""
        try:
            yield
        except BaseException as exc:
            self._record_end(exc)
            raise

    def _record_end(self, exc: BaseException) -> None:
        """Leave the run resumable: paused when cancelled (or stopped by `_pausing_error`),
        failed (with the reason) otherwise."""
        if self.run is None or not self.main_process:
            return
        if isinstance(exc, (Cancelled, KeyboardInterrupt)):
            self._pause(self.cancelled)
            return
        stopped = self._pausing_error(exc)
        if stopped is not None:
            self._pause(stopped, error=stopped)
            return
        message = self._failure_message(exc)
        runs.set_status(self.store, self.run.id, RunStatus.FAILED, error=message)
        self.sink.emit(ErrorEvent(message=message))
        self.sink.emit(RunFinished(status="failed", metrics=None))

    def _pause(self, reason: str, *, error: str | None = None) -> None:
        assert self.run is not None
        runs.set_status(
            self.store,
            self.run.id,
            RunStatus.PAUSED,
            error=f"{reason}; resume with ccapp {self.kind.value} --resume {self.run.id}",
        )
        if error is not None:
            self.sink.emit(ErrorEvent(message=error))
        self.sink.emit(RunFinished(status="paused", metrics=None))

    def _pausing_error(self, exc: BaseException) -> str | None:
        """The message of an error that pauses the run instead of failing it; None: fails."""
        return None

    def _failure_message(self, exc: BaseException) -> str:
        """The one line a failed run keeps as its error."""
        return exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"

    @property
    def _run_id(self) -> int:
        assert self.run is not None
        return self.run.id
