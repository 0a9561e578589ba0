# Entry points on a development machine. Each target sets up .venv first (idempotent).
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: setup test lint lock clean

setup:
	@scripts/bootstrap.sh

## Run the whole test suite (unit, real-ROS integration, lint and docstring checks).
test: setup
	$(PYTHON) -m pytest

## Lint only.
lint: setup
	$(VENV)/bin/ruff check .

## Rewrite requirements/constraints.txt from the current .venv (after changing requirements/*.in).
lock: setup
	scripts/lock.sh

clean:
	rm -rf $(VENV) build install log
