"""Shared fixtures: an isolated CCAPP_HOME per test, the paper's data, the tiny model."""

from __future__ import annotations

import os
from pathlib import Path

# Before Textual is imported: no animations, so snapshots never catch a bar mid-slide.
os.environ["TEXTUAL_ANIMATIONS"] = "none"

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_c2eval() -> Path | None:
    candidates = [
        os.environ.get("CCAPP_TEST_DATA", ""),
        REPO.parent / "shared" / "data" / "c2eval_test.jsonl",
        Path("/work/shared/data/c2eval_test.jsonl"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


C2EVAL_FILE = _find_c2eval()


@pytest.fixture(autouse=True)
def ccapp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config, data and cache folders."""
    home = tmp_path / "ccapp-home"
    monkeypatch.setenv("CCAPP_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # datasets' caches stay in the test
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return home


@pytest.fixture(scope="session")
def c2eval_file() -> Path:
    if C2EVAL_FILE is None:
        pytest.skip("the paper's c2eval_test.jsonl is not at ../shared/data (set CCAPP_TEST_DATA)")
    return C2EVAL_FILE


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny chat model, built once per test session (a few seconds)."""
    from ccapp.engines.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)
