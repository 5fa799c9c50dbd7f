# Two-command set-up: `make train` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.rlkit-installed
ARGS   ?=

.PHONY: setup train test test-slow test-all clean-venv

setup: $(STAMP)

# Re-install when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

train: $(STAMP)
	$(PY) train.py algo=dqn env=CartPole $(ARGS)

# The tests, the docstring examples (each with empty globals, see conftest.py) and the type check.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses=4 $(ARGS)
	$(PY) -m pytest -q --doctest-modules rlkit -p no:cacheprovider
	$(PY) -m mypy

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow" $(ARGS)

clean-venv:
	rm -rf $(VENV)
