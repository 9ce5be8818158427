"""How a live screen reads a job's end from its exit code, for resumable runs and the demo."""

from __future__ import annotations

import pytest

from ccapp.screens.demo import DemoScreen
from ccapp.screens.live_base import job_status
from ccapp.screens.live_run import LiveRunScreen
from ccapp.screens.syn import SynLiveScreen
from ccapp.screens.train import TrainLiveScreen


@pytest.mark.parametrize(
    ("returncode", "resumable", "status"),
    [
        (0, True, "done"),
        (0, False, "done"),
        (130, True, "paused"),  # the CLI's exit after Ctrl-C: the run waits for --resume
        (-2, True, "paused"),  # the child was ended by SIGINT itself
        (130, False, "cancelled"),  # the demo cannot be resumed
        (-2, False, "cancelled"),
        (1, True, "failed"),
        (2, False, "failed"),
        (-9, True, "failed"),
    ],
)
def test_an_exit_code_reads_as_a_status(returncode: int, resumable: bool, status: str) -> None:
    assert job_status(returncode, resumable=resumable) == status


def test_only_the_demo_is_not_resumable() -> None:
    assert [s.RESUMABLE for s in (LiveRunScreen, SynLiveScreen, TrainLiveScreen, DemoScreen)] == [
        True,
        True,
        True,
        False,
    ]
