# `make demo` and `make test` each set everything up on a fresh clone (venv, torch, project).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.pto-installed
TORCH_VERSION := 2.13.0

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch must come from pip's local CPU wheel; --no-index makes pip fail rather than fetch
	@# a CUDA build of several GB from the registry.
	$(PIP) install -q --no-index --no-deps torch==$(TORCH_VERSION) || { \
	  echo "error: torch==$(TORCH_VERSION) (CPU build) is not among pip's local wheels (find-links)."; \
	  echo "       Put torch-$(TORCH_VERSION)+cpu for this Python in pip's find-links folder and rerun."; exit 1; }
	$(PIP) install -q torch==$(TORCH_VERSION)
	@$(PY) -c "import sys, torch; v = torch.__version__.split('+')[0]; \
	  sys.exit(0 if v == '$(TORCH_VERSION)' else f'error: torch {torch.__version__} is installed in $(VENV); pto_dynamo needs $(TORCH_VERSION). Remove $(VENV) and rerun.')"
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/deepseek_v4/decode.py --config small --check
	$(PY) examples/demo_block.py

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=15

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
