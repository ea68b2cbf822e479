# One entry point for set-up, tests, benchmarks and the main job. See README.md and BUILD.md.
PYENV_PYTHON := $(shell pyenv which python3.10 2>/dev/null || command -v python3.10)
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup venv data lint test test-slow bench lock demo clean

setup: venv data          ## create .venv from the lock file and fetch the data sets

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/lock.txt pyproject.toml
	test -x $(PY) || $(PYENV_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==26.3" wheel
	$(PY) -m pip install -q -r requirements/lock.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

data: venv                ## fetch every data set the tests and benchmarks use into $TFCL_DATA_DIR
	$(VENV)/bin/tfcl data fetch

lint: venv                ## ruff (lint + format check) and the import-layering contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: venv                ## the default test suite (no slow tests)
	$(PY) -m pytest -q

test-slow: venv           ## the slow tests only
	$(PY) -m pytest -q -m slow

bench: venv               ## the image benchmark (writes benchmarks/results/)
	$(PY) benchmarks/image_ssl.py

demo: venv                ## the main job on its embedded default
	$(VENV)/bin/tfcl run --work-dir runs/main

lock:                     ## re-resolve requirements/base.in into requirements/lock.txt in a scratch venv
	rm -rf /tmp/tfcl-lock && $(PYENV_PYTHON) -m venv /tmp/tfcl-lock
	/tmp/tfcl-lock/bin/pip install -q -r requirements/base.in
	/tmp/tfcl-lock/bin/pip freeze --exclude-editable | grep -v '^tfcl' > requirements/lock.txt

clean:
	rm -rf $(VENV) build *.egg-info
