# The two commands of the README: `make report` and `make test`.
# Each creates .venv (python3 -m venv) when it is missing, installs every package at the exact
# version and hash pinned in requirements.lock, then the project itself without resolving
# anything (--no-deps); a second run reuses the venv (the stamp is newer than the lock).
# `make lock` regenerates requirements.lock from pyproject.toml (the source of truth).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCK := requirements.lock
PYTEST_ARGS ?=

.PHONY: report report-quick report-reader test lint lab label serve venv clean-venv model lock

$(STAMP): pyproject.toml $(LOCK)
	@if ! $(BIN)/python -c "import sys" >/dev/null 2>&1; then \
		echo "creating $(VENV) with $(PYTHON)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	# compile the numba feature kernels once now, so no command pays for it later
	$(BIN)/python -m helpers.features --warm-cache
	@touch $(STAMP)

# Pin every dependency of pyproject.toml (with the dev extra) for Python 3.11, with hashes.
# uv (the resolver) is a tool, not a dependency: installed into .venv on demand.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile --quiet --generate-hashes --extra dev --python-version 3.11 \
		pyproject.toml -o $(LOCK)

venv: $(STAMP)

report: $(STAMP)
	$(BIN)/music-study report

report-quick: $(STAMP)
	$(BIN)/music-study report --quick

# the reader's version: the same reports without code cells
report-reader: $(STAMP)
	$(BIN)/music-study report --no-input

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# (re)train the default genre model into data/models/default.skops
model: $(STAMP)
	$(BIN)/python -c "from helpers.models import default_model; from helpers.paths import default_model_path; default_model(retrain=True); print(default_model_path())"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

serve: $(STAMP)
	$(BIN)/music-study serve

clean-venv:
	rm -rf $(VENV)

# notebook 05 for labelling by hand: a working copy (data/user/notebooks/, git-ignored) opens in
# JupyterLab with MUSIC_STUDY_INTERACTIVE=1, so the tracked notebook never changes
label: $(STAMP)
	MUSIC_STUDY_INTERACTIVE=1 $(BIN)/jupyter lab "$$($(BIN)/python -c 'from helpers.labeling.launch import working_copy; print(working_copy())')"
