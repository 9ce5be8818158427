"""Running a job from the command line: cancellation by signal, output sinks, exit codes."""

from __future__ import annotations

import argparse
import importlib
import signal
import sqlite3
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ccapp.cli.common import add_command, open_store, print_json
from ccapp.cli.options import add_options, given
from ccapp.engines.options import declared
from ccapp.errors import UserError

if TYPE_CHECKING:
    from ccapp.engines.jobs import RunJob
    from ccapp.store.records import Run

    J = TypeVar("J", bound=RunJob[Any])
else:
    J = TypeVar("J")

EXIT_FAILED, EXIT_CANCELLED = 1, 130


@dataclass(frozen=True)
class JobCommand:
    """A job's command (`ccapp eval`, `syn`, `train`), built from its declaration: the config
    class's options become its flags and its docstring its help (first paragraph) and
    description (the rest); the job class is imported only when the command runs, so that
    `ccapp --help` loads no engine."""

    name: str
    config: type
    job: str  # "module:Class"
    example: str  # a command line that starts a run, for "missing --model"
    resume_help: str
    resume_type: Callable[[str], int] = int
    # Turns the given options into a new run's config where a command adds to them.
    new_config: Callable[[dict[str, Any]], Any] | None = None

    def register(self, subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
        """--db, one flag per declared option, then --resume, --events and --json (returned,
        for the flags a command has besides)."""
        p = add_command(subparsers, self.name, self.config.__doc__)
        add_options(p, self.config)
        add_run_arguments(p, resume_type=self.resume_type, resume_help=self.resume_help)
        p.set_defaults(handler=self.run)
        return p

    def run(self, args: argparse.Namespace, *, main_process: bool = True) -> int:
        """`--resume RUN` with the options given (the job refuses changed result settings), or
        a new run from a checked config, after asking for the arguments every run needs."""
        module, _, name = self.job.partition(":")
        if args.events == "jsonl" and main_process:  # the app shows it while torch loads
            from ccapp.engines.events import JsonLinesSink, Log

            JsonLinesSink(lambda: None).emit(
                Log(level="info", message="starting: loading torch and transformers…")
            )
        job_class = getattr(importlib.import_module(module), name)
        options = given(args, self.config)
        config = None
        if args.resume is None:
            missing = [
                d.flag
                for d in declared(self.config)
                if d.default is MISSING and d.name not in options
            ]
            if missing:
                raise UserError(f"missing {' and '.join(missing)}", fix=f"e.g. {self.example}")
            config = self.new_config(options) if self.new_config else self.config(**options)
            config.check()
        return run_command(
            args,
            job_class,
            lambda job: (
                job.start(config) if config is not None else job.resume(args.resume, options)
            ),
            main_process=main_process,
        )


def add_run_arguments(
    parser: argparse.ArgumentParser, *, resume_type: Callable[[str], int], resume_help: str
) -> None:
    """What every job command takes besides its config: --resume RUN, --events, --json."""
    parser.add_argument("--resume", type=resume_type, metavar="RUN", help=resume_help)
    parser.add_argument("--events", choices=["jsonl"], help="progress as JSON lines on stdout")
    parser.add_argument("--json", action="store_true", help="end with a one-line JSON summary")


@contextmanager
def cancellation() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set an event the engine checks between steps; a second Ctrl-C is hard."""
    event = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        if event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        event.set()
        print("\nccapp: stopping at the next step (Ctrl-C again to stop at once)…", file=sys.stderr)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def make_sink(events: str | None, run_id: Callable[[], int | None]) -> Any:
    if events == "jsonl":
        from ccapp.engines.events import JsonLinesSink

        return JsonLinesSink(run_id)
    from ccapp.cli.display import TerminalSink

    return TerminalSink()


def run_command(
    args: argparse.Namespace,
    job_class: type[J],
    work: Callable[[J], Run],
    *,
    main_process: bool = True,
) -> int:
    """`ccapp eval`, `syn` or `train`: `work` (start or resume) on a `job_class` job with the
    store of --db, cancelled by signal, reporting through --events, summed up by --json.

    Only the main process (rank 0 under accelerate) reports: the others run silently.
    """
    from ccapp.engines.events import NullSink
    from ccapp.store import runs

    kind = job_class.kind.value
    with open_store(args) as store, cancellation() as cancel:
        job: J | None = None

        def run_id() -> int | None:
            return job.run.id if job is not None and job.run else None

        def status() -> str | None:
            rid = run_id()
            return runs.get_run(store, rid).status.value if rid is not None else None

        sink = make_sink(args.events, run_id) if main_process else NullSink()
        job = job_class(store, sink, cancel, main_process=main_process)
        made = job  # the closures above see `job` as optional; this one needs it made
        return run_job(
            lambda: work(made),
            run_id=run_id,
            kind=kind,
            json_summary=args.json and main_process,
            sink=sink,
            resume_hint=f"ccapp {kind} --resume {{}}",
            status=status,
        )


def run_job(
    job: Callable[[], Any],
    *,
    run_id: Callable[[], int | None],
    kind: str,
    json_summary: bool,
    sink: Any,
    resume_hint: str,
    status: Callable[[], str | None] = lambda: None,
) -> int:
    """Run `job`, map its outcome to an exit code, and print the summary line.

    `status` reads the run's status from the store after a failure: what the engine left
    (paused or failed) is what the summary reports.
    """
    from ccapp.engines.generation.types import Cancelled

    try:
        run = job()
    except Cancelled:
        sink.close()
        rid = run_id()
        if rid is None:
            print("ccapp: cancelled before the run started; nothing was stored", file=sys.stderr)
        else:
            print(
                f"ccapp: cancelled; run {rid} is paused. Resume with: {resume_hint.format(rid)}",
                file=sys.stderr,
            )
        _summary(json_summary, rid, kind, "paused" if rid is not None else "cancelled", None)
        return EXIT_CANCELLED
    except UserError as exc:
        rid = run_id()
        if rid is None:  # the engine reports errors of a run it created; this one had none
            from ccapp.engines.events import ErrorEvent

            sink.emit(ErrorEvent(message=exc.message))
        sink.close()
        if rid is not None:
            left = status() or "failed"
            _summary(json_summary, rid, kind, left, None)
            exc.fix = (
                exc.fix + "; then " if exc.fix else ""
            ) + f"resume with: {resume_hint.format(rid)}"
        raise
    except sqlite3.OperationalError as exc:
        sink.close()
        rid = run_id()
        where = (
            f"run {rid} is left as it was; resume it with {resume_hint.format(rid)}" if rid else ""
        )
        print(
            f"ccapp: error: the store could not be written ({exc}). Fix: free disk space or "
            f"check the store's permissions. {where}".rstrip(),
            file=sys.stderr,
        )
        _summary(json_summary, rid, kind, "failed", None)
        return EXIT_FAILED
    except Exception:
        sink.close()
        rid = run_id()
        traceback.print_exc()
        if rid is not None:
            print(
                f"ccapp: run {rid} failed; it can be resumed with: {resume_hint.format(rid)}",
                file=sys.stderr,
            )
            _summary(json_summary, rid, kind, status() or "failed", None)
        return EXIT_FAILED
    sink.close()
    from ccapp.cli.display import TerminalSink

    if json_summary:
        _summary(True, run.id, kind, run.status.value, run.metrics)
    elif isinstance(sink, TerminalSink):
        sink.finished(run)
    return 0


def _summary(enabled: bool, run_id: int | None, kind: str, status: str, metrics: Any) -> None:
    if enabled:
        print_json({"run_id": run_id, "kind": kind, "status": status, "metrics": metrics or {}})
