# The two commands of the README: `make run` and `make test`. Everything they need installs here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := governance

.PHONY: run test lint install serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

instance/config.py:
	@mkdir -p instance
	@$(BIN)/python -c "import secrets; print('SECRET_KEY = %r' % secrets.token_hex(32))" > $@
	@echo "wrote $@ with a new secret key"

instance/.demo-loaded: | install instance/config.py
	$(BIN)/flask init-db
	$(BIN)/flask seed-demo
	touch $@

run: install instance/config.py instance/.demo-loaded
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

lint: install
	$(BIN)/ruff check governance tests migrations

test: install lint
	$(BIN)/python -m pytest
