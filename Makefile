# scaling-harness: `make sweep` runs the default sweep end to end, `make test` runs the tests.
# Both install what they need into .venv first (torch's CPU wheel before anything else).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: help install sweep smoke test test-fast lint bench clean clean-results

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install the harness (idempotent)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

sweep: install ## train the default sweep (cpu preset, gpu when CUDA is present) and fit it; ARGS=... for overrides
	$(PY) -m harness.sweep $(ARGS)

smoke: install ## the whole pipeline on the tiny smoke preset
	$(PY) -m harness.sweep sweep=smoke $(ARGS)

test: install ## all tests, slow end-to-end ones included
	$(PY) -m pytest -q --timeout=900

test-fast: install ## tests without the slow end-to-end ones
	$(PY) -m pytest -q -m "not slow"

lint: install ## the import-layer contract (pyproject: one-way flow) and ruff
	$(VENV)/bin/lint-imports
	$(PY) -m ruff check .

bench: install ## training-step, data and fit benchmarks (print key=value lines)
	$(PY) scripts/bench.py
	$(PY) scripts/bench_data.py
	$(PY) scripts/bench_fit.py

clean: ## remove caches and the venv; results in runs/ are kept (see clean-results)
	rm -rf outputs multirun .cache .pytest_cache .ruff_cache $(VENV)

clean-results: ## DELETE every sweep's results in runs/ (asks first; CONFIRM=yes skips the question)
	@test -d runs || { echo "no runs/ here"; exit 0; }; \
	echo "this deletes runs/: $$(ls runs | wc -l) sweep(s), $$(du -sh runs | cut -f1)"; \
	if [ "$(CONFIRM)" != yes ]; then printf 'type yes to delete: '; read answer; [ "$$answer" = yes ] || exit 1; fi; \
	rm -rf runs
