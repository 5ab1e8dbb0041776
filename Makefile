# Two front doors: `make demo` and `make test`. Both build the venv from nothing when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: setup demo test test-zoo lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch/torchvision first: pip takes the wheels that lie on this machine's disk (DESIGN.md §3).
	$(VENV)/bin/pip install -q torch==2.14.1 torchvision==0.29.1
	$(VENV)/bin/pip install -q -e '.[dev,ray,track,track-server,onnx]'
	touch $(STAMP)

setup: $(STAMP)

# The report is written even when a run failed (it lists failures); the exit status is the sweep's.
demo: setup
	$(VENV)/bin/prunebench sweep configs/sweeps/demo.yaml --results results/demo; status=$$?; \
	$(VENV)/bin/prunebench report results/demo || exit $$?; exit $$status

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/pytest

# Every torchvision family and 16 timm families, structured and unstructured (tests/test_zoo.py).
test-zoo: setup
	$(VENV)/bin/pytest -m zoo tests/test_zoo.py

lint: setup
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
