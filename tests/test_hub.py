"""Hub downloads: progress becomes events, and an unreachable Hub is a clear error."""

from __future__ import annotations

from typing import Any

import pytest

from ccapp.engines.generation.hub import fetch, progress_class
from ccapp.errors import UserError


def test_byte_progress_becomes_download_reports() -> None:
    reports: list[dict[str, Any]] = []
    bar_class = progress_class(lambda **fields: reports.append(fields), "org/model", every_s=0)
    bar = bar_class(total=1000, unit="B", name="huggingface_hub.snapshot_download.transfer")
    for _ in range(4):
        bar.update(250)
    bar.close()
    assert reports[-1] == {"phase": "download", "detail": "org/model", "done": 1000, "total": 1000}
    assert [r["done"] for r in reports] == [250, 500, 750, 1000]


def test_file_counters_are_not_reported_as_bytes() -> None:
    reports: list[dict[str, Any]] = []
    bar = progress_class(lambda **fields: reports.append(fields), "org/model", every_s=0)(total=3)
    bar.update(1)
    assert reports == []


def test_an_unreachable_model_says_how_to_use_a_local_folder() -> None:
    reports: list[dict[str, Any]] = []
    with pytest.raises(UserError, match="cannot download 'nobody-here/no-such-model'") as info:
        fetch("nobody-here/no-such-model", lambda **fields: reports.append(fields))
    assert "local folder" in (info.value.fix or "") and info.value.where == "--model"
    assert reports[0]["phase"] == "download"


def test_reports_survive_progress_bars_being_disabled_globally() -> None:
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    reports: list[dict[str, Any]] = []
    disable_progress_bars()
    try:
        bar = progress_class(lambda **fields: reports.append(fields), "org/model", every_s=0)(
            total=10, unit="B"
        )
        bar.update(10)
    finally:
        enable_progress_bars()
    assert reports[-1]["done"] == 10
