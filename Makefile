# ARM: the two commands are `make run` (demo on SQLite at http://127.0.0.1:8000; `make run PORT=8001`) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/arm
PYTEST_ARGS ?=
PORT   ?= 8000

.PHONY: run reset test test-pg install migrate seed lint format check schema css bench serve fuzz clean sdk-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo --port $(PORT)

# The server, the demo runtime (demo/runtime.py: heartbeats, tool calls, approvals, usage through the
# REST API) and the worker (manage.py worker: schedules, tasks, notifications); Ctrl-C stops all three.
# The demo's providers have made-up health URLs, so its worker polls none (ARM_SCHEDULE_INTERVALS, unless set:
# docs/schedules.md); they stay "unknown" and take deployments.
# No collectstatic: whitenoise serves from the finders (WHITENOISE_USE_FINDERS),
# the empty STATIC_ROOT only spares its missing-directory warning.
run: seed
	@mkdir -p staticfiles
	@trap 'kill $$runtime $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py demo_runtime --url http://127.0.0.1:$(PORT) & runtime=$$!; \
	ARM_SCHEDULE_INTERVALS=$${ARM_SCHEDULE_INTERVALS-provider_health=0} $(BIN)/python manage.py worker & worker=$$!; \
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# Rebuild the demo from an empty database (SQLite: the file is deleted; the venv is kept). Stop `make run` first.
reset: install
	$(BIN)/python manage.py seed_demo --reset --port $(PORT)

test: install
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test-pg: install
	DATABASE_URL=$(PG_URL) $(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: install
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

css: install
	$(BIN)/python manage.py tailwind install
	$(BIN)/python manage.py tailwind build

fuzz: install
	scripts/fuzz.sh

# The SDK (sdk/, package arm-sdk): installed with its framework extras into the venv; its suite starts its own
# ARM (this checkout, a temporary SQLite file) and drives it through the SDK and each framework. Its wait tests
# (-m wait: long-polls, approvals, resumes) run again on PostgreSQL, where LISTEN/NOTIFY wakes the waits, in a
# database of their own (SDK_PG_URL, dropped and created afresh).
SDK_PG_URL ?= postgres://postgres@127.0.0.1:5432/arm_sdk_pg
sdk-test: install
	$(BIN)/pip install --quiet -e "sdk[dev,langgraph,openai-agents,pydantic-ai]"
	cd sdk && env -u DATABASE_URL ../$(BIN)/pytest -q
	cd sdk && env -u DATABASE_URL ARM_SDK_DATABASE_URL=$(SDK_PG_URL) ../$(BIN)/pytest -q -m wait

# `make bench BENCH_ARGS="--scale fleet --database-url postgres://postgres@127.0.0.1:5432/arm_bench --load 300"`
BENCH_ARGS ?= --scale small
bench: install
	$(BIN)/python manage.py bench $(BENCH_ARGS)

# Production-style serving, DATABASE_URL honoured: gunicorn (sync workers, 2 x cores + 1) for everything, and
# the wait server (uvicorn config.asgi, one process) for GET /api/v1/approvals/{id}/wait/ on WAIT_PORT, which
# holds thousands of waits without a worker or a database connection each. Route that path to it with the
# reverse proxy, or give runtimes ARM_WAIT_URL (docs/runtime-integration.md, "Serving waits"). Beside them one
# worker (manage.py worker: schedules, tasks, notifications; run more, on any host, for more throughput).
# Ctrl-C stops all three. The open-file limit is raised to its hard limit: every held wait is a socket.
WORKERS   ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) + 1 )))
BIND      ?= 0.0.0.0:8000
WAIT_HOST ?= 0.0.0.0
WAIT_PORT ?= 8001
# bench/server.py (WAIT_SERVER_ARGS) starts the wait server with the same arguments
WAIT_ARGS := config.asgi:application --backlog 4096 --timeout-graceful-shutdown 5 --lifespan on
serve: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	@ulimit -n "$$(ulimit -Hn)" 2>/dev/null || true; \
	trap 'kill $$waits $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/uvicorn $(WAIT_ARGS) --host $(WAIT_HOST) --port $(WAIT_PORT) & waits=$$!; \
	$(BIN)/python manage.py worker & worker=$$!; \
	$(BIN)/gunicorn config.wsgi --workers $(WORKERS) --bind $(BIND) --access-logfile -

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3.demo-runtime.json staticfiles
