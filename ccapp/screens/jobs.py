"""Jobs as child processes of the CLI: their JSON-line events become Textual messages.

The app never runs a model itself. A job is `python -m ccapp … --events jsonl` in a child
process, so a crash or an out-of-memory error in the job cannot take the UI down, cancel
is a signal (SIGINT: the job stops at the next step and leaves the run paused), and the app
and scripts share one code path. `ReplayJob` plays recorded events instead, for tests.

Each line is parsed here, once, into its declared event (ccapp.engines.events), so screens
match on types and never on a dict's keys. A line that is not an event (not JSON, or a
declared event with a key missing) joins the job's stderr tail, where a failure shows it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from textual.message import Message
from textual.message_pump import MessagePump

from ccapp.engines.events import Event, parse_event, parse_line


@dataclass
class JobEvent(Message):
    """One event of a job, parsed (an `UnknownEvent` for a tag this version does not know)."""

    event: Event


@dataclass
class JobEnded(Message):
    returncode: int
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def error_line(self) -> str:
        """The job's own one-line error message, else its last words."""
        for line in reversed(self.stderr_tail):
            if line.startswith("ccapp: error:"):
                return line.removeprefix("ccapp: error:").strip()
        meaningful = [line for line in self.stderr_tail if line.strip()]
        return meaningful[-1] if meaningful else f"the job exited with code {self.returncode}"


class Job(Protocol):
    args: Sequence[str]

    async def run(self, target: MessagePump) -> None: ...

    def cancel(self) -> None: ...


class ChildJob:
    """`ccapp ARGS --events jsonl` in a child process of its own session, so that it can go on
    when the app quits ("keep running in the background"): neither the app's exit nor the
    terminal's signals reach it, and the app stops it only by `cancel` (SIGINT, as Ctrl-C)."""

    def __init__(self, args: Sequence[str]):
        self.args: Sequence[str] = [*args, "--events", "jsonl"]
        self.process: subprocess.Popen[bytes] | None = None

    async def run(self, target: MessagePump) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ccapp", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        stdout = await _reader(self.process.stdout)
        tail: deque[str] = deque(maxlen=40)
        collector = asyncio.create_task(self._collect(await _reader(self.process.stderr), tail))
        async for raw in stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("{"):
                continue
            try:
                event = parse_line(line)
            except ValueError:  # not JSON, or not the event it claims to be
                tail.append(line)
                continue
            target.post_message(JobEvent(event))
        returncode = await asyncio.to_thread(self.process.wait)
        await collector
        target.post_message(JobEnded(returncode, list(tail)))

    def cancel(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    @staticmethod
    async def _collect(stream: asyncio.StreamReader, tail: deque[str]) -> None:
        async for raw in stream:
            tail.append(raw.decode(errors="replace").rstrip())


async def _reader(pipe: Any) -> asyncio.StreamReader:
    """A child's pipe as an asyncio stream (a continuation_done line can be long)."""
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


class ReplayJob:
    """Plays recorded events (tests, snapshots); `cancel` ends it as a cancelled job would."""

    def __init__(
        self,
        events: Sequence[dict[str, Any] | Event],
        returncode: int = 0,
        stderr: Sequence[str] = (),
        hold: bool = False,
    ):
        self.args: Sequence[str] = ["replay"]
        self.events = [e if isinstance(e, Event) else parse_event(e) for e in events]
        self.returncode = returncode
        self.stderr = list(stderr)
        self.hold = hold  # stay "running" after the last event until cancelled
        self._cancelled = asyncio.Event()

    async def run(self, target: MessagePump) -> None:
        for event in self.events:
            target.post_message(JobEvent(event))
            await asyncio.sleep(0)
        if self.hold:
            await self._cancelled.wait()
            target.post_message(JobEnded(130, ["ccapp: cancelled"]))
            return
        target.post_message(JobEnded(self.returncode, self.stderr))

    def cancel(self) -> None:
        self._cancelled.set()
