# The two commands: `make run` and `make test`. Only Python 3.11+ is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: run prod test test-worker test-replica test-pgbouncer install migrate seed lint bench \
        load browser-deps i18n-deps messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo ""
	@echo "Serving on http://127.0.0.1:$(PORT)/  (Ctrl-C stops it)"
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# The production processes on one machine against PostgreSQL and Redis: migrate, collectstatic,
# the demo data, then gunicorn, the Celery workers and beat (deploy/Procfile, through honcho).
# Settings from the environment, defaults in deploy/one-machine.sh; docs/DEPLOY.md.
prod: install
	PORT=$(PORT) deploy/one-machine.sh

# Browser tests need Debian's chromium and chromedriver; installed here when missing and
# we are root (CI is). Elsewhere the browser tests are skipped with a message saying why.
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian chromium and chromium-driver for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null; \
	  else echo "chromium not installed: browser tests will be skipped"; fi; \
	fi

# The catalog tests run makemessages, which needs GNU gettext (Debian's gettext); the Chinese
# screenshots need a CJK font (fonts-noto-cjk). Installed here when missing and we are root
# (CI is); elsewhere tests/i18n says what is missing.
i18n-deps:
	@missing=""; command -v xgettext >/dev/null 2>&1 || missing="gettext"; \
	if command -v fc-list >/dev/null 2>&1 && [ -z "$$(fc-list :lang=zh 2>/dev/null)" ]; then \
	  missing="$$missing fonts-noto-cjk"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian $$missing for the language tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
	  else echo "$$missing not installed: the catalog and Chinese screenshot tests say so"; fi; \
	fi

# The Chinese catalogs (locale/zh_Hans/LC_MESSAGES): new messages of the code, templates and
# scripts added (untranslated until someone writes their Chinese), then compiled to the .mo
# files that are committed, so `make run` needs no gettext. tests/i18n checks both.
MESSAGES_IGNORE := --ignore=tests/* --ignore=bench/* --ignore=docs/* --ignore=deploy/* \
                   --ignore=staticfiles/* --ignore=static/vendor/* --ignore=var/* --ignore=tmp/*
messages: install i18n-deps
	$(BIN)/python manage.py makemessages -l zh_Hans -d django --add-location=file $(MESSAGES_IGNORE)
	$(BIN)/python manage.py makemessages -l zh_Hans -d djangojs --add-location=file $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages -l zh_Hans

# TEST_WORKERS pytest-xdist processes (one test database each); race tests run on one of
# them, one after another (tests/conftest.py). TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
test: install browser-deps i18n-deps
	CACHE_KEY_PREFIX=test-$$$$ $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-replica test-pgbouncer PYTEST_ARGS=

# Only the real-worker tests (kills, broker outages), which `make test` runs too.
test-worker: install
	CACHE_KEY_PREFIX=test-$$$$ $(BIN)/python -m pytest -m worker tests/integration $(PYTEST_ARGS)

# Past one machine (docs/SCALING.md), which `make test` runs too: each session starts its
# service from deploy/, runs its tests on a test database of its own and stops the service.
# They need PostgreSQL on 127.0.0.1:5432 (DATABASE_URL) and root or the postgres user (CI
# is root); elsewhere they say why they are skipped, and in CI (CI set) that is a failure.
REPLICA_PORT   ?= 15433
PGBOUNCER_PORT ?= 16432
# The money model's examples through PgBouncer (the main session runs CI's 120 directly).
PGBOUNCER_MODEL_EXAMPLES ?= 20
define local_postgres_or_skip
case "$$DATABASE_URL" in postgres*) ;; *) echo "$(1) skipped: DATABASE_URL is not PostgreSQL"; \
  [ -z "$$CI" ] || exit 1; exit 0;; esac; \
if [ "$$(id -u)" != 0 ] && [ "$$(id -un)" != postgres ]; then \
  echo "$(1) skipped: deploy/ scripts run as root or as the postgres user"; \
  [ -z "$$CI" ] || exit 1; exit 0; fi; \
db="$$(echo "$$DATABASE_URL" | sed -E 's|.*/([^/?]+)([?].*)?$$|\1|')"
endef

# The replica tests against a streaming replica on REPLICA_PORT (deploy/pg-replica).
test-replica: install
	@$(call local_postgres_or_skip,replica tests); \
	deploy/pg-replica/setup.sh || exit 1; \
	trap 'deploy/pg-replica/stop.sh' EXIT; \
	DATABASE_URL="postgres://postgres@127.0.0.1:5432/$${db}_replica" \
	DATABASE_REPLICA_URL="postgres://postgres@127.0.0.1:$(REPLICA_PORT)/$${db}_replica" \
	CACHE_KEY_PREFIX=test-$$$$ $(BIN)/python -m pytest -n 0 -m replica tests/replica $(PYTEST_ARGS)

# The race and money tests, and PgBouncer's own, through PgBouncer in transaction pooling
# mode on PGBOUNCER_PORT (deploy/pgbouncer).
test-pgbouncer: install
	@$(call local_postgres_or_skip,PgBouncer tests); \
	deploy/pgbouncer/start.sh || exit 1; \
	trap 'deploy/pgbouncer/stop.sh' EXIT; \
	DATABASE_URL="postgres://postgres@127.0.0.1:$(PGBOUNCER_PORT)/$${db}_pgbouncer" \
	DATABASE_TRANSACTION_POOLING=true MODEL_EXAMPLES=$(PGBOUNCER_MODEL_EXAMPLES) MODEL_SHARDS=1 \
	CACHE_KEY_PREFIX=test-$$$$ $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup \
	  -m "race or money or pooling" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The load test (docs/BENCHMARKS.md, "Under load"): needs DATABASE_URL (PostgreSQL; the
# dataset goes in its name + "_load", built once) and CELERY_BROKER_URL (a Redis database
# of its own, emptied by the run). LOAD_ARGS="--quick --no-doc" for a short check.
load: install
	$(BIN)/python -m bench.load.run $(LOAD_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3
