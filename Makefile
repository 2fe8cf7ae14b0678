# eo4dm: quick start is `make demo` then `make test`. Every install step lives here and in pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PARAMS ?= params/demo.yaml
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean-demo help

help:
	@echo "make demo   - install, build the demo archive, run the routine for its latest dekad, print the report path"
	@echo "make test   - install with test extras and run the test suite (offline)"
	@echo "make lint   - ruff"

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("eo4dm needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m eo4dm_helpers.sample build --params $(PARAMS)
	$(BIN)/python run_all.py --params $(PARAMS) --backfill

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean-demo:
	rm -rf demo
