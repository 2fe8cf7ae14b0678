# eo4dm: quick start is `make demo` then `make test`. Every install step lives here and in pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PARAMS ?= params/demo.yaml
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean-demo help browser reliability live

help:
	@echo "make demo   - install, build the demo archive, backfill its reference, run its latest dekad, print the report path"
	@echo "make test   - install with test extras and run the test suite (offline)"
	@echo "make lint   - ruff"
	@echo "make live   - the live Earth Engine tests (tests/live), with EO4DM_EE_KEY=<service-account key file>"
	@echo "make reliability - crash campaigns (TRIALS=20 SIGKILLs and reruns; TRIALS of each run kind: auto, range, --backfill"
	@echo "                   killed by SIGKILL/SIGTERM/SIGINT and recovered), injected faults, bad inputs: prints the figures"
	@echo "make browser - Debian chromium + chromium-driver for the browser test (never fails; the test skips without them)"

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

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# tests/live: real Earth Engine requests (README, "Live tests"); skipped by `make test`. The key's path is
# checked here without being printed; its content is read by eo4dm_helpers.ee.session only.
live: $(STAMP)
	@if [ -z "$$EO4DM_EE_KEY" ]; then echo "live: set EO4DM_EE_KEY to the path of an Earth Engine service-account key file"; exit 2; fi
	@if [ ! -r "$$EO4DM_EE_KEY" ]; then echo "live: EO4DM_EE_KEY does not name a readable file"; exit 2; fi
	$(BIN)/python -m pytest tests/live -rs

# issues #9, #13: `make test` runs the same campaigns with 3 trials (tests/test_reliability.py, 3 of each run kind in
# tests/test_reliability_campaign.py)
TRIALS ?= 20
reliability: $(STAMP)
	$(BIN)/python bench/reliability.py --trials $(TRIALS)

# tests/test_report_browser.py drives /usr/bin/chromium through /usr/bin/chromedriver. Installed with apt where
# apt is usable (root, or sudo without a password); otherwise says why and exits 0: the test then skips.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then echo "browser: no apt-get here: install Chromium and ChromeDriver yourself, or the browser test skips"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else echo "browser: installing chromium needs root or sudo without a password: the browser test skips"; exit 0; fi; \
	  echo "browser: apt-get install chromium chromium-driver"; \
	  { $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null; } \
	    || echo "browser: apt-get could not install chromium chromium-driver: the browser test skips"; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/indicators.py
	$(BIN)/python bench/download.py
	@echo "tile-sized preprocessing (several minutes): $(BIN)/python bench/preprocess.py"

clean-demo:
	rm -rf demo
