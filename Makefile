# The README's two commands: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MEMBERS := core/pyproject.toml plugins/support/pyproject.toml plugins/finance/pyproject.toml \
           plugins/recommend/pyproject.toml apps/suite/pyproject.toml
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: run test lint format bench bench-deps bench-quick clean install chromium

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

# The browser tests drive Debian's Chromium; install it when it is missing (root on Debian, as CI
# is). Elsewhere say what to do instead of failing later with three browser-test errors.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make test: the browser tests need Debian's chromium (apt-get install -y chromium)" >&2; exit 1; \
	  fi; }

# Two pytest-xdist workers (one torch thread each: tests/conftest.py), a test file per worker at a
# time so that its browser and trained-model fixtures are made once; `make test WORKERS=0` runs
# in one process.
WORKERS ?= 2
test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TUNESMITH_STRICT_PLUGINS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --timeout 600 -n $(WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The peers the benchmarks race (SetFit) are not dependencies of tunesmith: installed here only.
bench-deps: $(STAMP)
	$(BIN)/pip install --quiet -r requirements-bench.txt

bench-quick: bench-deps
	for b in $$(ls benchmarks/*.py | grep -v bench_common); do HF_HUB_OFFLINE=1 $(BIN)/python $$b --quick || exit 1; done

bench: bench-deps
	for b in $$(ls benchmarks/*.py | grep -v bench_common); do HF_HUB_OFFLINE=1 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
