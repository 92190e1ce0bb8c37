# The two commands (see README): `make app` starts the dashboard, `make test`
# runs every test. Both create .venv and install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: app warm-up test test-fast bench install install-dev browser clean

# Installing also compiles the statistics kernels into Numba's cache (python -m core.measure.warm_up):
# every later process loads the same compiled code, so a run's table is the same in any of them.
$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/python -m core.measure.warm_up
	touch $@

$(BIN)/.installed-dev: requirements-dev.txt $(BIN)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev

## Start the dashboard on http://localhost:$(PORT)
app: install warm-up
	$(BIN)/streamlit run app.py --server.port $(PORT)

## Fill Numba's cache with the statistics kernels (quick when it is full already)
warm-up: install
	$(BIN)/python -m core.measure.warm_up

## Every test, browser tests included (needs Debian's chromium: `make browser` as root installs it)
test: install-dev warm-up
	$(BIN)/python -m pytest

## Everything but the browser and slow tests
test-fast: install-dev warm-up
	$(BIN)/python -m pytest -m "not browser and not slow"

## Debian's Chromium for the browser tests (root)
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

## Benchmarks: print figures, never fail
bench: install-dev
	$(BIN)/python bench/bench_overhead.py
	$(BIN)/python bench/bench_startup.py
	$(BIN)/python bench/bench_theory.py
	$(BIN)/python bench/bench_sweep.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
