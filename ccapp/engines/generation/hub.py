"""Fetching a Hub model before loading it, with progress a job can report.

`from_pretrained` downloads silently from ccapp's point of view: a 14 GB first download
would look like a frozen screen in the app. Downloading first with `snapshot_download`
lets its byte counters become `model_loading` events. Models already in Hugging Face's
cache (HF_HOME) are found without a network call.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccapp.errors import UserError

TOKENIZER_FILES = ["*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken", "*.py"]
SAFETENSORS = ["*.safetensors"]
PYTORCH_BINS = ["*.bin"]

Report = Callable[..., None]  # called with phase, detail, done, total


def fetch(repo_id: str, report: Report, *, weights: bool = True) -> Path:
    """A local folder holding the model (or just its tokenizer), downloading what is missing.

    Safetensors are preferred; `.bin` weights are fetched only for repositories without them.
    """
    patterns = TOKENIZER_FILES + (SAFETENSORS if weights else [])
    folder = _snapshot(repo_id, patterns, report)
    if weights and not any(folder.glob("*.safetensors")):
        folder = _snapshot(repo_id, TOKENIZER_FILES + PYTORCH_BINS, report)
    return folder


def _snapshot(repo_id: str, patterns: list[str], report: Report) -> Path:
    from huggingface_hub import snapshot_download

    try:  # already cached: no network, no events
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass
    report(phase="download", detail=repo_id, done=0, total=None)
    try:
        folder = snapshot_download(
            repo_id, allow_patterns=patterns, tqdm_class=progress_class(report, repo_id)
        )
    except Exception as exc:  # offline, gated, missing: each says what it is
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot download '{repo_id}' from the Hugging Face Hub ({first})",
            where="--model",
            fix="check the id and your connection (gated models need `hf auth login` and an "
            "accepted licence), or pass a local folder",
        ) from None
    return Path(folder)


def progress_class(report: Report, repo_id: str, every_s: float = 0.5) -> type:
    """A tqdm class for huggingface_hub that turns its byte counters into reports.

    It derives from tqdm itself, not from huggingface_hub's subclass, which turns every bar
    off once progress bars are disabled globally (transformers does that while loading).
    """
    from tqdm.auto import tqdm as base_tqdm

    class EventProgress(base_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["file"] = io.StringIO()  # no terminal output; the events are the display
            kwargs["disable"] = False
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)
            self._last = 0.0

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            now = time.monotonic()
            if self.unit == "B" and (
                now - self._last >= every_s or (self.total and self.n >= self.total)
            ):
                self._last = now
                report(
                    phase="download",
                    detail=repo_id,
                    done=int(self.n),
                    total=int(self.total or 0) or None,
                )
            return shown

    return EventProgress
