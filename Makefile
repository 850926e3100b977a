# Two commands set everything up on a fresh machine:
#   make demo   - install (venv, CPU torch 2.13.0, graphnet) and run the quick-start example
#   make test   - install the same way and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/step_time.py --threads 1

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
