# Two commands on a fresh machine:
#   make run    virtual env + install, train if there is no champion, evaluate, then
#               serve it on http://127.0.0.1:3000 (web page at /; Ctrl-C stops)
#   make test   virtual env + install (+ Debian's chromium for the web test), lint and
#               type check (make lint), then the test suite on 3 processes (pytest-xdist)
#   make test-fast  the unit layers (tests/code, tests/data) without the slow tests
# Everything runs on 127.0.0.1 with no network beyond the package index at install.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast install browser lint format clean mutation

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	# Byte-compile once: uv installs no .pyc, and where PYTHONDONTWRITEBYTECODE
	# is set none is ever written, so every command recompiled MLflow, pandas &c.
	# on start (measured: `salarymodel versions` 5.9 s -> 2.4 s, benchmarks/startup.py).
	# Not the libraries' own test suites nor pip, which nothing here imports: 48.7 -> 37.8
	# CPU-s on a fresh clone (/usr/bin/time of the two compileall commands).
	$(BIN)/python -m compileall -q -j 0 -x '/(tests|pip)/' $(VENV)/lib src > /dev/null
	touch $(STAMP)

install: $(STAMP)

# train's tables (stdout) are the evaluation that `evaluate` prints next: shown once.
# Its progress, data counts and the gate's decision (stderr) stay on screen.
run: install
	$(BIN)/salarymodel train --if-no-champion > /dev/null
	$(BIN)/salarymodel evaluate
	$(BIN)/salarymodel serve

# Headless Chromium for the web page's end-to-end test (Debian packages; the
# test skips, saying why, when none could be installed).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) || \
	  echo "could not install chromium: the web test will be skipped"

# Lint and types first: a style or type error fails the run before the suite.
# Three pytest-xdist workers on the machine's 2 cores (PYTEST_WORKERS=0 runs in one
# process): with two, a quarter of the CPU sat idle while tests waited on servers,
# locks and child processes (1,194 CPU-s in a 784 s run); --dist loadfile keeps each module on one worker (its project trained
# once, its tests in file order); --no-loadscope-reorder hands the modules out
# longest first (tests/conftest.py LONGEST_FIRST) instead of by test count. A
# champion several modules share is trained once per session and copied
# (tests/helpers/trained_once.py).
PYTEST_WORKERS ?= 3
test: lint browser
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# For iterating: the pure rules and file-reading layers, no training, no processes.
test-fast: install
	$(BIN)/pytest -q -m "not slow" tests/code tests/data

# Mutation testing ([tool.mutmut] in pyproject: the modules that hold promises and
# the tests that cover them). One module:  make mutation MUTANTS='salarymodel.core.currency.*'
# Results stay in mutants/ (gitignored): a second run only retests what changed;
# `.venv/bin/mutmut show NAME` shows a survivor. Then the score per module.
# OMP_NUM_THREADS=1: each mutant's tests run in a process forked from one that has
# already run LightGBM; a multi-threaded predict after that fork hangs in OpenMP
# (libgomp is not fork-safe), and the hang counted as a timeout, i.e. "killed".
MUTANTS ?=
mutation: install
	OMP_NUM_THREADS=1 nice $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/python scripts/mutation_scores.py $(MUTANTS)

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy  # settings in pyproject.toml [tool.mypy]
	$(BIN)/lint-imports  # the floors: [tool.importlinter] in pyproject.toml

format: install
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

clean:
	rm -rf $(VENV) .mypy_cache mlflow.db mlruns models/registry-cache models/quarantine models/retraining \
	  models/serving-reload.json bentoml_home  # models/accepted is training data: kept
