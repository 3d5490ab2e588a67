# Mailroom: every target works on a fresh machine with only python3 and make.
# `make install` builds .venv from uv.lock. uv itself lives in .tools: installed by pip into a venv, or, where
# python3 has no venv module (Debian without python3-venv), by pip straight into the folder.

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install test lint format bench demo dev clean

install: $(VENV)/.installed

$(UV):
	rm -rf .tools
	( $(PYTHON) -m venv .tools && .tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)" ) || \
	  ( rm -rf .tools && $(PYTHON) -m pip install --quiet --target .tools "uv==$(UV_VERSION)" )

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --extra dev --python $(PYTHON)
	touch $@

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

demo: install
	$(BIN)/mailroom demo

# The sandbox, the Dagster UI (http://127.0.0.1:3000) and daemon, and the HTTP API, until Ctrl-C.
dev: install
	$(BIN)/mailroom dev

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache
