# Two entry points: `make run` (set up and serve) and `make test` (set up and
# run every test). Both work on a fresh Debian machine with Python 3.11.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup setup-dev system-deps lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements-dev.txt
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput

setup-dev: system-deps $(VENV)/.installed-dev
	$(BIN)/python manage.py migrate --noinput

# Chromium and its driver for the browser tests, from Debian's packages.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver; fi; \
	fi

# Daphne through digitsite.serve, which bounds request bodies and cuts off
# clients that send too slowly (HTTP_MAX_BODY_BYTES, HTTP_RECEIVE_TIMEOUT_SECONDS);
# a WebSocket must finish connecting within 20 s and answer a ping every 20 s
# within 30 s.
SERVE = $(BIN)/python -m digitsite.serve --websocket_connect_timeout 20 \
	--ping-interval 20 --ping-timeout 30

run: setup
	$(SERVE) -b $(HOST) -p $(PORT) digitsite.asgi:application

# Three test processes (pytest-xdist), each taking whole files, the longest
# first (tests/conftest.py, LONGEST_FILES). The suite is bound by CPU: on a
# fresh clone, .ci/run took 934 s (pytest 835 s) and 1,577 CPU seconds, 1.69
# of the 2 cores, of which 573 in the test processes, 423 in Chromium and 43
# in Playwright's driver, 241 in the Daphne servers forked for the tests
# (with their zygotes and script runners), 126 in management commands, 81
# in pip's set-up and 87 in other Python scripts (bench/bench_suite_cpu.py,
# bench/results/suite-cpu.json). On
# 2 cores, on one machine and one day, pytest took 562, 657 and 695 s with
# three processes and 650 and 718 s with two (the last two runs one after
# the other on one checkout); two took half the time of one when that was
# measured.
TEST_WORKERS ?= 3

# The 25 slowest steps are listed after every run: the suite's time is
# watched against its 10-minute bound.
test: setup-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--durations=25

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

# Every benchmark in turn (about 40 minutes on 2 cores); results in bench/results/.
bench: setup-dev
	$(BIN)/python bench/bench_inference.py
	$(BIN)/python bench/bench_training.py
	$(BIN)/python bench/bench_load.py --players 16 --rooms 4 --seconds 30 --modes one --output load-16
	$(BIN)/python bench/bench_load.py
	$(BIN)/python bench/bench_feedback_loop.py

clean:
	rm -rf $(VENV) staticfiles artifacts
