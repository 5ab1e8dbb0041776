# Two front doors: `make demo` and `make test`. Both build the venv from nothing when needed.
#
# Installs go through uv (bootstrapped into the venv by pip), which downloads and unpacks wheels
# in parallel: torch's CUDA build alone is ~4 GB unpacked. `make demo` installs only what the
# demo needs; `make test` (and `make setup`) add the test tools, Ray, tracking and ONNX.
#   TORCH=cpu     CPU-only torch/torchvision from the PyTorch index (no CUDA libraries);
#   TORCH=cu126   (cu128, cu130, ...) that CUDA build; TORCH=auto picks one for this machine.
#   TORCH=        (default) PyPI's own wheels: on Linux a CUDA 13 build, which also runs on CPUs.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
PYTHON ?= python3
TORCH ?=
CORE := $(VENV)/.core-stamp
FULL := $(VENV)/.full-stamp

# uv does not read pip's configuration: hand it pip's extra indexes, so that a machine whose
# pip is configured with local wheel indexes (as the development machine is) uses them.
PIP_EXTRA_INDEXES = $(shell $(PYTHON) -m pip config get global.extra-index-url 2>/dev/null)
INSTALL = $(if $(PIP_EXTRA_INDEXES),UV_EXTRA_INDEX_URL="$(PIP_EXTRA_INDEXES)") \
	UV_INDEX_STRATEGY=unsafe-best-match $(UV) pip install --quiet --python $(PY) $(if $(TORCH),--torch-backend $(TORCH))

.PHONY: setup demo test test-slow test-zoo lint format bench clean

$(CORE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==0.13.9
	$(INSTALL) torch==2.14.1 torchvision==0.29.1 -e .
	touch $@

$(FULL): $(CORE)
	$(INSTALL) -e '.[dev,ray,track,track-server,onnx,lm]'
	touch $@

setup: $(FULL)

# Worker processes, one torch thread each: several small models train at once instead of one
# model splitting tiny operations across the cores. The report is written even when a run
# failed (it lists failures); the exit status is the sweep's.
demo: $(CORE)
	$(VENV)/bin/prunebench sweep configs/sweeps/demo.yaml --results results/demo \
		--executor processes --threads 1; status=$$?; \
	$(VENV)/bin/prunebench report results/demo || exit $$?; exit $$status

test: $(FULL)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/pytest -n 2

# End-to-end tests of many seconds each: several processes, Ray, a real MLflow server, ONNX
# exports of every model family, a pseudo-terminal (pytest -m slow; CI runs them). One process:
# these tests start processes and Ray workers of their own and time their waits.
test-slow: $(FULL)
	$(VENV)/bin/pytest -m slow

# Every torchvision family and 20 timm families, structured and unstructured (tests/models/test_zoo.py).
test-zoo: $(FULL)
	$(VENV)/bin/pytest -m zoo tests/models/test_zoo.py

lint: $(FULL)
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

bench: $(FULL)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
