# The README's two commands: `make repro` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATASET_DIR := /usr/share/datasets/fashion-mnist

.PHONY: setup dataset repro test lint bench clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/activate

# The Debian package when we can install it; otherwise the fetch stage tries the mirror.
dataset:
	@if [ -d $(DATASET_DIR) ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
		|| echo "make: apt-get install dataset-fashion-mnist failed; fetch will try the mirror"; \
	else echo "make: not root or no apt-get; fetch will try the mirror"; fi

setup: $(BIN)/activate dataset

repro: setup
	PATH=$(CURDIR)/$(BIN):$$PATH dvc repro
	PATH=$(CURDIR)/$(BIN):$$PATH dvc metrics show

test: setup
	$(BIN)/ruff check .
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/scratch_epoch.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
