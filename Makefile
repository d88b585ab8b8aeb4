# Two commands on a fresh machine:
#   make run    virtual env + install, train if there is no champion, then the main job
#   make test   virtual env + install, then the test suite
# Everything runs on 127.0.0.1 with no network beyond the package index at install.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/salarymodel train --if-no-champion
	$(BIN)/salarymodel evaluate

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) mlflow.db mlruns models/registry-cache models/quarantine
