# `make demo` and `make test` each set up .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test pythons stress lint bench tools clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "make setup: a virtualenv in $(VENV) with qcog-mock and its dependencies, torch's CPU build"
	@echo "            among them (about 2 minutes the first time, mostly torch; once per checkout)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar on -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/qcog-mock demo

test: $(STAMP) tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck
	$(BIN)/python -m pytest -n 2

# The tests that need no torch on Python 3.12 and 3.13, a .nox virtualenv each (noxfile.py).
pythons: $(STAMP)
	$(BIN)/nox

# The tests beside two busy processes, in a random order (scripts/stress-suite --help).
stress: $(STAMP) tools
	scripts/stress-suite

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck

bench: $(STAMP)
	$(BIN)/python bench/bench_trainer.py

# Debian's tools that tests and benchmarks drive: chromium (tests/browser/) and wrk
# (bench/responsiveness.py). Installed when missing and apt-get is usable (as root), unless
# QCOG_MOCK_NO_APT=1; where they are not installed, their tests skip and say why.
DEBIAN_TOOLS := chromium wrk
tools:
	@missing=""; for tool in $(DEBIAN_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ -n "$$QCOG_MOCK_NO_APT" ] && [ "$$QCOG_MOCK_NO_APT" != 0 ]; then \
		echo "make tools: missing$$missing; not installed (QCOG_MOCK_NO_APT is set): their tests will skip"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make tools: installing$$missing with apt-get, for the browser tests (chromium) and the"; \
		echo "            responsiveness benchmark (wrk); QCOG_MOCK_NO_APT=1 skips this (those tests skip)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null) \
			|| echo "make tools: could not install$$missing; the tests that need them will skip"; \
	else \
		echo "make tools: missing$$missing (install them as root: apt-get install$$missing); their tests will skip"; \
	fi

clean:
	rm -rf $(VENV) .nox .pytest_cache .ruff_cache .hypothesis *.egg-info
