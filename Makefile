# binhyen — the two commands: `make run` (the whole system) and `make test` (lint + all tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := .local/uv/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install mongo-server run test lint format bench clean

install: $(VENV)/.synced mongo-server dashboard-assets promtool

$(UV):
	$(PYTHON) -m venv .local/uv
	.local/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# MongoDB-wire server for tests and `make run`: MONGODB_URL if set, a mongod on PATH,
# else FerretDB v1 built once into .local/bin, on PostgreSQL from Debian's packages
# (FERRETDB_BACKEND=sqlite: on SQLite files, nothing more to install).
mongo-server:
	@if [ -n "$${MONGODB_URL:-}" ] || command -v mongod >/dev/null; then :; \
	else deploy/local/install-ferretdb.sh $(CURDIR)/.local/bin/ferretdb; \
	  if [ "$${FERRETDB_BACKEND:-postgresql}" != sqlite ]; then deploy/local/install-postgresql.sh; fi; fi

# promtool checks and unit-tests the alert rules (deploy/observability/alerts.yml); built once
# from the Go module proxy, of the Prometheus release compose runs.
.PHONY: promtool
promtool:
	deploy/local/install-promtool.sh $(CURDIR)/.local/bin/promtool

run: install
	$(PY) -m tools.localstack

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services tools

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install browser lint
	$(PY) -m pytest

# Each benchmark starts its own servers on loopback and prints its figures (docs/benchmarks.md),
# on the shipped test keys: dev mode (shared/startup.py).
bench: export BINHYEN_DEV_MODE := 1
bench: install browser
	$(PY) -m bench.ingest
	$(PY) -m bench.triage
	$(PY) -m bench.reports
	$(PY) -m bench.reports_store
	$(PY) -m bench.zalo_client
	$(PY) -m bench.analytics
	$(PY) -m bench.broadcast
	$(PY) -m bench.country_sim
	$(PY) -m bench.console

clean:
	rm -rf $(VENV) .local/uv var

# From the npm registry into a git-ignored folder, never a CDN: the analytics dashboard's chart
# library (served by the analytics service), and axe-core for the console's accessibility test
# (injected by the browser tests only, never served to users); and headless Chromium.
# One npm install for all: an install of one package alone prunes the others (no package.json).
.PHONY: dashboard-assets browser screenshots
CHART_JS_VERSION := 4.6.1
AXE_CORE_VERSION := 4.11.0
NPM_PACKAGES := "chart.js@$(CHART_JS_VERSION)" "axe-core@$(AXE_CORE_VERSION)"
dashboard-assets: .local/npm/node_modules/chart.js/dist/chart.umd.min.js .local/npm/node_modules/axe-core/axe.min.js
.local/npm/node_modules/chart.js/dist/chart.umd.min.js .local/npm/node_modules/axe-core/axe.min.js:
	mkdir -p .local/npm
	npm install --prefix .local/npm --no-audit --no-fund --ignore-scripts --no-save $(NPM_PACKAGES)
browser:
	deploy/local/install-chromium.sh
# Every console page at 360 x 740 and 1366 x 768 into var/screenshots/console/ (git-ignored),
# from the stack the browser tests start (make run's, on free ports), checked as in make test.
screenshots: install browser
	BINHYEN_SCREENSHOTS=1 $(PY) -m pytest -q -p no:cacheprovider tests/console/test_pages.py

# Compose (deploy/compose.yaml): a 3-node NATS cluster, a MongoDB replica set, every service.
COMPOSE := docker compose -f deploy/compose.yaml --env-file deploy/.env
.PHONY: up down logs admin
up:
	@test -f deploy/.env || { echo "deploy/.env missing: cp deploy/env.example deploy/.env and fill it in" >&2; exit 1; }
	$(COMPOSE) up -d --build --wait
# The first admin (there is no default account or password): prompts for the password twice.
admin:
	@test -n "$(USERNAME)" -a -n "$(NAME)" || { echo 'usage: make admin USERNAME=... NAME="Full name"' >&2; exit 1; }
	$(COMPOSE) run --rm -it identity services.identity create-admin --username "$(USERNAME)" --name "$(NAME)"
down:
	$(COMPOSE) down
logs:
	$(COMPOSE) logs -f --tail=200

# The triage model (services/reports/model/) from the corpus's training authors, without staff
# corrections, so the model in the repository holds no citizen's words (docs/reports.md).
.PHONY: triage-model
triage-model: install
	$(PY) -m services.reports.train --no-corrections --force
