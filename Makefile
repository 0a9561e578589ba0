# Entry points on a development machine. Each target sets up .venv first (idempotent).
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: setup demo test lint lock clean
DEMO_BAG := examples/demo_bag

setup:
	@scripts/bootstrap.sh

## The main job: the whole ROS pipeline (VAD -> emotion -> policy) on the example audio with the
## shipped model; prints a table, one row per utterance: time, top emotion, probabilities (%),
## latency and the engage decision (without --table: one JSON line per /emotion and /engage).
demo: setup
	scripts/run_isolated.sh $(VENV)/bin/ser_pipeline --bag $(DEMO_BAG) --rate 3 --table

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
