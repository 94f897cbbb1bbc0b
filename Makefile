# Two entry points, both idempotent on a fresh machine with only Python 3.10+:
#   make demo  -- create .venv, install, run the main job (synthetic LOSO training + evaluation)
#   make test  -- create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= runs/demo

.PHONY: setup demo test clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.13.0 is a CPU wheel on local disk; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,demo]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/accelerate launch --cpu --num_processes 1 examples/train.py \
		--dataset synthetic --output_dir $(DEMO_DIR) --overwrite

# Two workers, each given whole test files (--dist loadfile): a file's module and session set-ups (the
# shared tiny run, the fork server) are made once per worker, never once per test. Files are handed out in
# collection order, which tests/conftest.py starts with the files of `slow` tests.
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

clean:
	rm -rf $(VENV) runs
