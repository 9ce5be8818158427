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
    """`ccapp ARGS --events jsonl` in a child process."""

    def __init__(self, args: Sequence[str]):
        self.args: Sequence[str] = [*args, "--events", "jsonl"]
        self.process: asyncio.subprocess.Process | None = None

    async def run(self, target: MessagePump) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ccapp",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,  # a continuation_done line can be long
        )
        tail: deque[str] = deque(maxlen=40)
        assert self.process.stdout is not None and self.process.stderr is not None
        reader = asyncio.create_task(self._collect(self.process.stderr, tail))
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("{"):
                continue
            try:
                event = parse_line(line)
            except ValueError:  # not JSON, or not the event it claims to be
                tail.append(line)
                continue
            target.post_message(JobEvent(event))
        returncode = await self.process.wait()
        await reader
        target.post_message(JobEnded(returncode, list(tail)))

    def cancel(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)

    @staticmethod
    async def _collect(stream: asyncio.StreamReader, tail: deque[str]) -> None:
        async for raw in stream:
            tail.append(raw.decode(errors="replace").rstrip())


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
