# The commands a person types: `make demo`, `make check` (seconds: lint, types, the fast tier) and `make test`
# (the whole suite, what CI runs). Each creates .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Workers of the whole suite: its tests mostly wait on real servers, so one more than two cores keeps them busy.
TEST_WORKERS ?= 3

.PHONY: demo check test lint typecheck pytest pytest-fast dev clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/engage demo

dev: $(STAMP)
	$(BIN)/engage dev

# ruff, mypy and the fast tier side by side (each one's output printed whole when it ends).
check: $(STAMP)
	$(MAKE) --no-print-directory -j3 --output-sync=target lint typecheck pytest-fast

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy .

# The fast tier (tests/conftest.py marks it): pure tests and the workflows on the time-skipping server.
pytest-fast: $(STAMP)
	ENGAGE_TEST_TIER=fast $(BIN)/python -m pytest -q -m fast -n 2 --dist worksteal

# Every test; the ones of one xdist group (tests/conftest.py) one after another on one worker.
pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
