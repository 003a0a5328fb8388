# make run   create the virtualenv, the SQLite database, the sample bank, centres and calendar, then serve on :8000
# make test  install, then run the test suite (SQLite, and PostgreSQL when CBT_DATABASE_URL names one)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
AXE := tests/browser/node_modules/axe-core/axe.min.js
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install browser-deps clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(INSTALLED)

run: $(INSTALLED)
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

test: $(INSTALLED) browser-deps
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var tests/browser/node_modules .pytest_cache
