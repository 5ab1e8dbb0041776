"""A checked `ExecutorChoice` made into the executor that computes a sweep's steps."""

from __future__ import annotations

import torch

from prunebench.engine.executors.base import Executor
from prunebench.engine.executors.choice import ExecutorChoice
from prunebench.engine.executors.local import LocalExecutor
from prunebench.engine.executors.processes import ProcessExecutor
from prunebench.engine.executors.ray import RayExecutor


def set_threads(threads: int | None) -> None:
    """Torch threads of this process (the local executor's and a dry run's timing)."""
    if threads is not None:
        torch.set_num_threads(threads)


def make_executor(choice: ExecutorChoice) -> Executor:
    set_threads(choice.threads)
    if choice.name == "processes":
        return ProcessExecutor(choice.workers, choice.threads)
    if choice.name == "ray":
        return RayExecutor(choice.address, choice.workers, choice.threads, choice.gpus_per_step)
    return LocalExecutor()
