"""Rules the code keeps: fast start-up (no ML stack for --help or the first screen), the import
contracts between engines, store and screens, and a clean ruff run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import run_ccapp

HEAVY = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "pandas")


def _loaded_after(code: str) -> set[str]:
    probe = (
        "import sys\n"
        f"{code}\n"
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("loaded:"), out.stdout
    return {m for m in last.removeprefix("loaded:").split(",") if m}


def test_help_does_not_import_the_ml_stack() -> None:
    code = "from ccapp.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert _loaded_after(code) == set()


@pytest.mark.parametrize(
    "module", ["ccapp.app", "ccapp.screens.home", "ccapp.store", "ccapp.engines.generation.presets"]
)
def test_first_screen_modules_do_not_import_the_ml_stack(module: str) -> None:
    assert _loaded_after(f"import {module}") == set()


def test_engines_and_store_never_import_textual() -> None:
    code = "import ccapp.engines.data, ccapp.engines.generation.models, ccapp.engines.devices, ccapp.store"
    probe = code + "\nimport sys; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_contracts_hold() -> None:
    """import-linter: engines/store free of Textual, screens free of torch (static check)."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_dash_m_and_version() -> None:
    result = run_ccapp("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ccapp ")


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "ccapp", "tests", "benchmarks"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
