# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint format bench screenshots clean install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start UI + API + worker on http://127.0.0.1:8025 with a demo capture server.
run: $(STAMP)
	$(BIN)/postroom db upgrade
	$(BIN)/postroom serve --demo

## Run every test (real peers; set POSTROOM_REQUIRE_SERVICES=1 to fail instead of skip).
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP)
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

## Refresh docs/screenshots/ (the README's pictures) from the browser tests.
screenshots: $(STAMP)
	POSTROOM_SCREENSHOTS=1 $(BIN)/pytest tests/browser -q

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
