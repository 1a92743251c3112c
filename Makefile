# install / serve / test / lint / bench. Every target installs what it needs first.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
# Bytecode is cached (__pycache__ is git-ignored) even where the environment turns caching off:
# the test processes (pytest workers, daphne servers, c4c commands) then skip recompiling.
unexport PYTHONDONTWRITEBYTECODE
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test test-fast lint format bench services browser

install:
	@python3 -m uv --version >/dev/null 2>&1 || command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode
	.venv/bin/python manage.py migrate --noinput -v0
	.venv/bin/python manage.py collectstatic --noinput -v0

serve: install
	.venv/bin/c4c serve --host $(HOST) --port $(PORT)

services:
	scripts/ensure-services.sh

browser:
	scripts/ensure-chromium.sh

test: install services browser lint
	.venv/bin/pytest
	.venv/bin/pytest -m bench
	scripts/test-postgres.sh

# The fast suite while you work: no servers, browser or services, both cores.
test-fast: install
	.venv/bin/pytest -m "not slow" -n 2

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/python manage.py makemigrations --check --dry-run

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: install
	.venv/bin/pytest -m bench
	.venv/bin/python -m bench
