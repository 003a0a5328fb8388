# make run   create the virtualenv, the SQLite database, the sample bank, centres and calendar, then serve on :8000
# make test  install, then run the test suite (SQLite, and PostgreSQL when CBT_DATABASE_URL names one)
# make fast  the quick part: SQLite only, no browser, no slow simulations, stop at the first failure
# make lint  ruff over the tree and a type check of engine/
# make load  the load run against two gunicorn instances and PostgreSQL (docs/loadtests.md)
# make faults  kill workers, servers and PostgreSQL mid-load; check no acknowledged answer is lost

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
AXE := tests/browser/node_modules/axe-core/axe.min.js
HOST ?= 127.0.0.1
PORT ?= 8000

LOAD_INSTALLED := $(VENV)/.load-installed
LOAD_ARGS ?=
FAULTS_ARGS ?=

.PHONY: run test fast lint translations install browser-deps clean load faults

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The interface's catalogues (.po in the repository) compiled for gettext.
translations: $(INSTALLED)
	@$(BIN)/pybabel compile -d delivery/web/translations --statistics

install: $(INSTALLED)

run: $(INSTALLED) translations
	$(BIN)/cbt db upgrade
	$(BIN)/cbt sample load
	$(BIN)/cbt centres load
	$(BIN)/cbt demo
	$(BIN)/cbt serve --host $(HOST) --port $(PORT)

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent
	touch $@

# The browser test drives Debian's chromium; install it when we may (as root, with apt).
browser-deps: $(AXE)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) >/dev/null; } || \
	  echo "note: chromium is not installed; the browser test will be skipped"

test: $(INSTALLED) translations browser-deps
	$(BIN)/python -m pytest

fast: $(INSTALLED) translations
	CBT_DATABASE_URL= CBT_TEST_POSTGRES_URL= $(BIN)/python -m pytest -q -x -m "not slow and not browser" --ignore=tests/browser

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy engine

$(LOAD_INSTALLED): $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[load]'
	touch $@

# Both need PostgreSQL on 127.0.0.1:5432 (CBT_LOAD_ADMIN_URL names another).
load: $(LOAD_INSTALLED)
	$(BIN)/python -m loadtests.run $(LOAD_ARGS)

faults: $(INSTALLED)
	$(BIN)/python -m loadtests.faults $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) var tests/browser/node_modules .pytest_cache
