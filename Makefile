# The two commands (see README): `make app` starts the dashboard, `make test`
# runs every test. Both create .venv and install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: app test test-fast bench install install-dev browser clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(BIN)/.installed-dev: requirements-dev.txt $(BIN)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

## Start the dashboard on http://localhost:$(PORT)
app: install
	$(BIN)/streamlit run app.py --server.port $(PORT)

## Every test, browser tests included (needs Debian's chromium: `make browser` as root installs it)
test: install-dev
	$(BIN)/python -m pytest

## Everything but the browser and slow tests
test-fast: install-dev
	$(BIN)/python -m pytest -m "not browser and not slow"

## Debian's Chromium for the browser tests (root)
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

## Benchmarks: print figures, never fail
bench: install-dev
	$(BIN)/python bench/bench_overhead.py
	$(BIN)/python bench/bench_theory.py
	$(BIN)/python bench/bench_sweep.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
