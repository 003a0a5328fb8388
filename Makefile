# make run   create the virtualenv, the SQLite database, the sample bank, centres and calendar, then serve on :8000
# make test  install, then run the test suite (SQLite, and PostgreSQL when CBT_DATABASE_URL names one)
# make screenshots  every page of every user in Japanese and English, as PNGs in var/screenshots/ for review
# make fast  the quick part: SQLite only, no browser, no slow simulations, stop at the first failure
# make lint  ruff over the tree and a type check of engine/
# make load  the load run against two gunicorn instances and PostgreSQL (docs/loadtests.md)
# make faults  kill workers, servers and PostgreSQL mid-load; check no acknowledged answer is lost
# make stack-up / stack-down  the serving stack on this machine: nginx (https://127.0.0.1:8443), two
#            gunicorn instances and PostgreSQL, with the sample bank, centres and demo logins (docs/deployment.md)

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

STACK_ARGS ?=

.PHONY: run test fast lint translations install browser-deps screenshots clean load faults nginx stack-up stack-down stack-status

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# The interface's catalogues (.po in the repository) compiled for gettext.
translations: $(INSTALLED)
	@$(BIN)/pybabel compile -d delivery/web/translations --statistics

install: $(INSTALLED)

run: $(INSTALLED) translations
	$(BIN)/cbt db upgrade
	$(BIN)/cbt sample load
	$(BIN)/cbt centres load
	CBT_PUBLIC_URL=http://$(HOST):$(PORT) $(BIN)/cbt demo
	$(BIN)/cbt serve --host $(HOST) --port $(PORT)

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent
	touch $@

# The browser test drives Debian's chromium, with Debian's Noto CJK fonts so that its screenshots
# show real Japanese glyphs; install them when we may (as root, with apt).
BROWSER_PACKAGES := chromium fonts-noto-cjk
browser-deps: $(AXE)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q $(BROWSER_PACKAGES) || (apt-get update -q && apt-get install -y -q $(BROWSER_PACKAGES))) >/dev/null; } || \
	  echo "note: chromium is not installed; the browser test will be skipped"
	@dpkg-query -W -f='$${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed" || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q fonts-noto-cjk || (apt-get update -q && apt-get install -y -q fonts-noto-cjk)) >/dev/null; } || \
	  echo "note: fonts-noto-cjk is not installed; screenshots will show boxes for Japanese text"

# Every page of every user in Japanese and English, at 1280x800 and 800x600, as PNGs in
# var/screenshots/<language>-<size>/ for review (the browser walk, tests/browser/test_every_page.py);
# the README's screenshot is refreshed from the set (docs/screenshots/).
screenshots: $(INSTALLED) translations browser-deps
	CBT_DATABASE_URL= CBT_TEST_POSTGRES_URL= $(BIN)/python -m tests.browser.screenshots

test: $(INSTALLED) translations browser-deps
	$(BIN)/python -m pytest

fast: $(INSTALLED) translations
	CBT_DATABASE_URL= CBT_TEST_POSTGRES_URL= $(BIN)/python -m pytest -q -x -m "not slow and not browser" --ignore=tests/browser

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy engine

$(LOAD_INSTALLED): $(INSTALLED)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[load]'
	touch $@

# The stack's nginx is Debian's package; install it when we may (as root, with apt).
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q nginx || (apt-get update -q && apt-get install -y -q nginx)) >/dev/null && \
	  { [ ! -s /run/nginx.pid ] || nginx -s quit; }; } || \
	  { echo "nginx is not installed: apt-get install nginx"; exit 1; }

# All need PostgreSQL on 127.0.0.1:5432 (CBT_LOAD_ADMIN_URL names another) and run through nginx.
load: $(LOAD_INSTALLED) nginx
	$(BIN)/python -m loadtests.run $(LOAD_ARGS)

faults: $(INSTALLED) nginx
	$(BIN)/python -m loadtests.faults $(FAULTS_ARGS)

stack-up: $(INSTALLED) nginx
	$(BIN)/python -m loadtests.stack up $(STACK_ARGS)

stack-down: $(INSTALLED)
	$(BIN)/python -m loadtests.stack down $(STACK_ARGS)

stack-status: $(INSTALLED)
	$(BIN)/python -m loadtests.stack status

# Record the installed stack as the constraints (after a deliberate upgrade, with the suite green).
constraints: $(LOAD_INSTALLED)
	$(BIN)/pip freeze --exclude-editable | grep -v '^cbt-engine' | sed '1i # The stack the suite last passed on (pip freeze); make install applies it with pip -c.' > constraints.txt

clean:
	rm -rf $(VENV) var tests/browser/node_modules .pytest_cache
