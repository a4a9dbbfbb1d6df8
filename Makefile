# scaling-harness: `make sweep` runs the default sweep end to end, `make test` runs the tests.
# Both install what they need into .venv first: the harness and its dependencies, around whatever torch
# the venv's interpreter already has (the CPU pin only where it has none). GPU node: see docs/gpu.md.
PYTHON     ?= $(shell command -v python3.11 || command -v python3)
VENV       ?= .venv
# e.g. --system-site-packages, so the venv sees a GPU node's own torch and CUDA libraries (also when the
# node's Python is itself a venv: scripts/install.py inherit)
VENV_FLAGS ?=
# installed only when `import torch` fails in the venv; an existing torch is kept (a pip constraint)
TORCH_PIN  ?= torch==2.13.0
EXTRAS     ?= dev
# where pip finds packages: empty for the index; install-offline sets --no-index --find-links WHEELS
PIP_FROM   ?=
# make wheels / node-wheels (on a machine with network) and make install-offline (on the node): the wheel
# folder, the node's Python version and platform tags (pip matches each tag exactly; current releases ship
# manylinux_2_28 wheels), the dependencies published only as source (hydra's parser), built into wheels
# here; node-wheels: the node's `python3 -m pip list --format=freeze` and the folder's size limit in MiB
WHEELS     ?= wheelhouse
PY_VERSION ?= 3.12
PLATFORM   ?= manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64
SDISTS     ?= antlr4-python3-runtime==4.9.3
NODE_FREEZE ?= node-freeze.txt
LIMIT_MIB  ?= 64
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
ARGS       ?=

.PHONY: help install install-offline wheels node-wheels sweep smoke blob test test-fast lint bench gpu-check clean clean-results

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install the harness, keeping a torch already there (idempotent)

$(STAMP): pyproject.toml
	test -x $(PY) || { $(PYTHON) -m venv $(VENV_FLAGS) $(VENV) && \
	  $(if $(findstring system-site-packages,$(VENV_FLAGS)),$(PYTHON) scripts/install.py inherit $(VENV),true); }
	$(if $(PIP_FROM),,$(PY) -m pip install -q --upgrade pip)
	$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install -q $(PIP_FROM) $(TORCH_PIN) || { echo \
	  "error: no torch in $(PY) and none installable: install the node's torch first or VENV_FLAGS=--system-site-packages"; \
	  exit 1; }
	$(PY) scripts/install.py torch-constraint > $(VENV)/torch-constraint.txt
	$(PY) -m pip install -q $(PIP_FROM) -c $(VENV)/torch-constraint.txt -e '.$(if $(EXTRAS),[$(EXTRAS)])'
	touch $(STAMP)

install-offline: ## install from WHEELS=dir with no index (a node without network), keeping its torch
	@test -d $(WHEELS) || { echo "error: WHEELS=$(WHEELS): no such folder; build one with make wheels"; exit 1; }
	$(MAKE) install PIP_FROM="--no-index --find-links $(abspath $(WHEELS))"

wheels: ## download wheels of every dependency but torch for PY_VERSION and PLATFORM into WHEELS (needs the index)
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; v == "$(PY_VERSION)" or print( \
	  f"warning: pip evaluates dependency markers with this Python ({v}), not $(PY_VERSION); " \
	  "for a node running $(PY_VERSION), run with PYTHON=python$(PY_VERSION)")'
	mkdir -p $(WHEELS)
	$(PYTHON) scripts/install.py requirements $(EXTRAS) > $(WHEELS)/requirements.txt
	$(PYTHON) -m pip wheel -q --no-deps --use-pep517 -w $(WHEELS) $(SDISTS)
	$(PYTHON) -m pip download -q --only-binary=:all: --python-version $(PY_VERSION) \
	  $(foreach p,$(PLATFORM),--platform $(p)) --find-links $(WHEELS) -d $(WHEELS) \
	  -r $(WHEELS)/requirements.txt $$($(PYTHON) scripts/install.py build-requirements)

node-wheels: EXTRAS =
node-wheels: ## wheels of only what a node lacks (NODE_FREEZE), for PY_VERSION and PLATFORM, into WHEELS (<= LIMIT_MIB)
	$(PYTHON) scripts/node_wheels.py $(NODE_FREEZE) $(WHEELS) --python-version $(PY_VERSION) \
	  $(foreach p,$(PLATFORM),--platform $(p)) $(foreach s,$(SDISTS),--sdist $(s)) --extras "$(EXTRAS)" \
	  --limit-mib $(LIMIT_MIB)

sweep: install ## train the default sweep (cpu preset, gpu when CUDA is present) and fit it; ARGS=... for overrides
	$(PY) -m harness.sweep $(ARGS)

smoke: install ## the whole pipeline on the tiny smoke preset
	$(PY) -m harness.sweep sweep=smoke $(ARGS)

blob: install ## every seed claim in one report (docs/blob.md): trains what is missing; ARGS=blob.dry_run=true
	$(PY) -m harness.blob $(ARGS)

test: install ## all tests, slow end-to-end ones included
	$(PY) -m pytest -q --timeout=900

test-fast: install ## tests without the slow end-to-end ones
	$(PY) -m pytest -q -m "not slow"

lint: install ## the import-layer contract (pyproject: one-way flow) and ruff
	$(VENV)/bin/lint-imports
	$(PY) -m ruff check .

bench: install ## training-step, data and fit benchmarks (print key=value lines)
	$(PY) scripts/bench.py
	$(PY) scripts/bench_plain_gpt.py
	$(PY) scripts/bench_data.py
	$(PY) scripts/bench_fit.py

gpu-check: ## the device check (docs/gpu.md): key=value lines; ARGS=--device=cpu for the small CPU version
	scripts/gpu_check.sh $(ARGS)

clean: ## remove caches and the venv; results in runs/ are kept (see clean-results)
	rm -rf outputs multirun .cache .pytest_cache .ruff_cache $(VENV)

clean-results: ## DELETE every sweep's results in runs/ (asks first; CONFIRM=yes skips the question)
	@test -d runs || { echo "no runs/ here"; exit 0; }; \
	echo "this deletes runs/: $$(ls runs | wc -l) sweep(s), $$(du -sh runs | cut -f1)"; \
	if [ "$(CONFIRM)" != yes ]; then printf 'type yes to delete: '; read answer; [ "$$answer" = yes ] || exit 1; fi; \
	rm -rf runs
