"""Which executor a sweep runs on, and its options, checked before anything is computed.

Light (no torch): the command line checks a user's choice here in milliseconds, and
`executors/factory.py` turns the checked choice into an executor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prunebench.config.schema import RunConfig
from prunebench.errors import PrunebenchError

EXECUTORS = ("local", "processes", "ray")


@dataclass(frozen=True)
class ExecutorChoice:
    """An executor's name and options; None means the executor's own default."""

    name: str = "local"
    workers: int | None = None
    threads: int | None = None
    address: str | None = None
    gpus_per_step: float | None = None


def choose_executor(
    name: str,
    configs: Sequence[RunConfig],
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    gpus_per_step: float | None = None,
) -> ExecutorChoice:
    """The checked choice, or a one-line PrunebenchError naming the option to fix. Runs that all
    stay on the CPU take no GPU share."""
    if name not in EXECUTORS:
        raise PrunebenchError(f"--executor must be local, processes or ray, not '{name}'")
    if name == "local" and workers:
        raise PrunebenchError("--workers needs --executor processes or ray")
    if name != "ray" and (address or gpus_per_step is not None):
        raise PrunebenchError("--address and --gpus-per-step need --executor ray")
    for value, option in ((workers, "--workers"), (threads, "--threads")):
        if value is not None and value < 1:
            raise PrunebenchError(f"{option} must be >= 1, got {value}")
    if gpus_per_step is not None and gpus_per_step < 0:
        raise PrunebenchError(f"--gpus-per-step must be >= 0, got {gpus_per_step}")
    if gpus_per_step is None and all(cfg.device == "cpu" for cfg in configs):
        gpus_per_step = 0.0
    return ExecutorChoice(name, workers, threads, address, gpus_per_step)
