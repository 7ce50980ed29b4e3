# One venv at the repository root; every target installs it first if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test lint clean corpus

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[mysql,postgres,nats,mqtt,pubsub,bench,dev]'
	touch $(STAMP)

up: install
	$(BIN)/weatherpipe up

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# The labelled anomaly corpus (benchmarks/corpus/README.md); generated, never committed.
corpus: install
	$(BIN)/python -m benchmarks.corpus.generate build/corpus

clean:
	rm -rf $(VENV) weather.db .pytest_cache .mypy_cache .ruff_cache
