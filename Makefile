# The README's two commands: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MEMBERS := core/pyproject.toml plugins/support/pyproject.toml plugins/finance/pyproject.toml \
           plugins/recommend/pyproject.toml apps/suite/pyproject.toml
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: run test lint format bench bench-quick clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch goes in first, alone, with the exact pin from requirements-dev.txt, so that nothing
# installed after it can pull a CUDA build.
$(STAMP): $(BIN)/python requirements-dev.txt $(MEMBERS)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $$(grep -E '^torch==' requirements-dev.txt)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/tunesmith ui --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TUNESMITH_STRICT_PLUGINS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --timeout 600 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-quick: $(STAMP)
	for b in benchmarks/*.py; do HF_HUB_OFFLINE=1 $(BIN)/python $$b --quick || exit 1; done

bench: $(STAMP)
	for b in benchmarks/*.py; do HF_HUB_OFFLINE=1 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
