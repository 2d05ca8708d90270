# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Re-installs whenever pyproject.toml is newer than the last install.
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint format venv clean

demo: $(INSTALLED)
	$(PY) manage.py rundemo

test: $(INSTALLED)
	$(PY) -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: $(INSTALLED)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[dev]'
	touch $(INSTALLED)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
