# Parley: `make test` and `make demo` work from a bare machine (see README).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.parley-installed
# The CPU build of torch. A GPU worker host installs its CUDA build instead (README, "GPU hosts").
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= bot,worker,analysis,topics,dev
PYTEST_ARGS ?=

.PHONY: install system-deps test lint demo bench mutation clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
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

# Mutation testing (not part of `make test` or CI): mutmut mutates the leaderboard's interval
# code and the vote rules ([tool.mutmut] in pyproject.toml) and runs their tests against each
# mutant; MUTANTS narrows it (e.g. MUTANTS='analysis.leaderboard*'). Needs a Redis for the
# core tests (PARLEY_TEST_REDIS_URL, as for `make test`). Results: docs/testing.md.
MUTANTS ?=
mutation: install
	$(PY) -m pip install --quiet -c constraints.txt -e ".[mutation]"
	rm -rf mutants
	PYTHONPATH=$(CURDIR)/mutants $(PY) -m mutmut run --max-children 2 $(MUTANTS)
	$(PY) -m mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
