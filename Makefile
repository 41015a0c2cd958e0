# Every target that runs code bootstraps .venv itself: a fresh clone needs only `make test` or `make train`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Two pytest workers (the suite's subprocesses start single-threaded, so two cores do more together: ~14 min instead
# of ~18 here); tests that share a service (the SLURM cluster, the browser) stay on one worker (xdist_group).
PARALLEL ?= -n 2 --dist loadgroup

.PHONY: help install train demo test test-fast lint format bench bench-quick clean

help:
	@echo "make train      run the default experiment (bundled sample photos, CPU, a few minutes)"
	@echo "make demo       interactive inpainting page on http://127.0.0.1:7860 (newest trained model)"
	@echo "make test       full test suite, and every docstring example in src/inpaint (pyproject: --doctest-modules)"
	@echo "make test-fast  tests not marked slow"
	@echo "make lint       ruff check + format check"
	@echo "make format     ruff format + autofix"
	@echo "make bench      benchmarks/ tables (see benchmarks/RESULTS.md)"
	@echo "make clean      remove caches, outputs and the venv"

# Re-installs only when the project metadata or the pinned versions change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python -m inpaint.train $(ARGS)

demo: $(STAMP)
	$(BIN)/python -m inpaint.app $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs multirun wandb lightning_logs build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
