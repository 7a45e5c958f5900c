# Two commands a newcomer needs: `make demo` (the main job on the tiny CPU preset) and `make test`.
# Both install what they need first: system packages (apt), a venv, the project with pinned versions.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# Every pip call in this venv is held to constraints.txt: torch must stay 2.13.0 (the CPU wheel).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt

.PHONY: install test test-fast demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install_system_deps.sh
	./scripts/install_system_deps.sh
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(VENV)/bin/pip check
	touch $@

test: install
	$(PY) -m pytest -q --durations=25

test-fast: install
	$(PY) -m pytest -q -m "not integration"

demo: install
	$(PY) jobs/demo.py

bench: install
	$(PY) bench/decode.py --quick
	$(PY) bench/env.py --quick
	$(PY) bench/eval.py --quick
	$(PY) bench/imagine.py --quick
	$(PY) bench/serve.py --quick
	$(PY) bench/scale.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
