# The two commands of the README: `make report` and `make test`.
# Each creates .venv (python3 -m venv) when it is missing or stale and installs the project with
# its dev extra; a second run reuses it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: report report-quick test lint lab serve venv clean-venv model

$(STAMP): pyproject.toml
	@if ! $(BIN)/python -c "import sys" >/dev/null 2>&1; then \
		echo "creating $(VENV) with $(PYTHON)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# compile the numba feature kernels once now, so no command pays for it later
	$(BIN)/python -m helpers.features --warm-cache
	@touch $(STAMP)

venv: $(STAMP)

report: $(STAMP)
	$(BIN)/music-study report

report-quick: $(STAMP)
	$(BIN)/music-study report --quick

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# (re)train the default genre model into data/models/default.skops
model: $(STAMP)
	$(BIN)/python -c "from helpers.models import default_model, default_model_path; default_model(retrain=True); print(default_model_path())"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

serve: $(STAMP)
	$(BIN)/music-study serve

clean-venv:
	rm -rf $(VENV)
