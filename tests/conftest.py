"""Shared fixtures: tiny configs on the bundled digits data (seconds per run on 2 CPU cores)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prunebench.config.loading import load_run_config
from prunebench.config.schema import RunConfig
from sweep_helpers import one_torch_thread

# The models in tests are tiny: one thread is faster than two and immune to a busy machine.
torch.set_num_threads(1)

# A width-8 CNN, a few pretraining epochs, short patience: a whole run takes seconds.
TINY = [
    "device=cpu",
    "model.options={width: 8}",
    "pretrain.epochs=4",
    "pretrain.patience=2",
    "finetune.max_epochs=3",
    "finetune.patience=1",
    "regime.name=geometric",
    "regime.target=0.8",
    "regime.steps=2",
]


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """A test that runs torchrun's launcher in-process leaves its SIGINT/SIGTERM handlers behind;
    the next test in the same process (or pytest-xdist worker) must see Python's own."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def tiny_config(*overrides: str) -> RunConfig:
    """The tiny digits config with extra `a.b=c` overrides applied after TINY."""
    return load_run_config(None, [*TINY, *overrides])


@pytest.fixture
def one_thread():
    """One torch thread for a test whose results are compared at equal thread counts (modules
    use it with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    with one_torch_thread():
        yield


@pytest.fixture
def tiny():
    return tiny_config


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m prunebench ARGS` in a subprocess (the real entry point, real exit codes)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "prunebench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def invoke(monkeypatch, capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from prunebench.cli.app import main

    def call(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["prunebench", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call
