"""Fetching a Hub model before loading it, with progress a job can report.

`from_pretrained` downloads silently from ccapp's point of view: a 14 GB first download
would look like a frozen screen in the app. Downloading first with `snapshot_download`
lets its byte counters become `model_loading` events. Models already in Hugging Face's
cache (HF_HOME) are found without a network call.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccapp.errors import UserError

COMMIT = re.compile(r"[0-9a-f]{40}")
TOKENIZER_FILES = ["*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken", "*.py"]
SAFETENSORS = ["*.safetensors"]
PYTORCH_BINS = ["*.bin"]

Report = Callable[..., None]  # called with phase, detail, done, total


def snapshot_of(
    ref: Any, report: Report, *, revision: str | None = None, weights: bool = True
) -> Path | None:
    """The fetched snapshot of a resolved Hub model (`models.ModelRef`) at `revision`, for
    loading from; None for a local model, whose files are where it is — and which has no
    revision to pick, so one given is refused."""
    if not ref.is_local:
        return fetch(ref.source, report, weights=weights, revision=revision)
    if revision:
        raise UserError(
            f"{ref.spec} is not a Hub model: a revision pins Hub models only",
            where="--revision",
            fix="drop --revision (a local model's files are its revision)",
        )
    return None


def fetch(
    repo_id: str, report: Report, *, weights: bool = True, revision: str | None = None
) -> Path:
    """A local folder holding the model (or just its tokenizer) at `revision` (a branch, tag
    or commit; default main), downloading what is missing. The folder is the snapshot of one
    commit, named by it (`snapshot_commit`).

    Safetensors are preferred; `.bin` weights are fetched only for repositories without them.
    """
    patterns = TOKENIZER_FILES + (SAFETENSORS if weights else [])
    folder = _snapshot(repo_id, patterns, report, revision)
    if weights and not any(folder.glob("*.safetensors")):
        folder = _snapshot(repo_id, TOKENIZER_FILES + PYTORCH_BINS, report, revision)
    return folder


def _snapshot(repo_id: str, patterns: list[str], report: Report, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:  # already cached: no network, no events
        return Path(
            snapshot_download(
                repo_id, allow_patterns=patterns, revision=revision, local_files_only=True
            )
        )
    except Exception:
        pass
    report(phase="download", detail=repo_id, done=0, total=None)
    try:
        folder = snapshot_download(
            repo_id,
            allow_patterns=patterns,
            revision=revision,
            tqdm_class=progress_class(report, repo_id),
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


def snapshot_commit(
    repo_id: str,
    revision: str | None = None,
    *,
    repo_type: str = "model",
    cache_dir: str | Path | None = None,
) -> str | None:
    """The commit that `revision` (default main) of a Hub repository points to in Hugging
    Face's local cache (default: HF_HUB_CACHE) — what a run that fetched it actually read —
    or None when the cache does not hold it. Reads the cache's refs file: no network."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    if revision and COMMIT.fullmatch(revision):
        return revision
    root = Path(cache_dir or constants.HF_HUB_CACHE)
    cache = root / repo_folder_name(repo_id=repo_id, repo_type=repo_type)
    try:
        commit = (cache / "refs" / (revision or "main")).read_text().strip()
    except (OSError, ValueError):
        return None
    return commit if COMMIT.fullmatch(commit) else None


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
