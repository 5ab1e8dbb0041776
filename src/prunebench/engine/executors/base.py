"""What the driver and every executor share: a job (one planned step to compute), its result,
the `Executor` protocol and `compute_job`, which computes one job in the process that holds it.

Workers only compute. A job carries the step, any config of a run through it and the state it
starts from (None: the dense model); the result carries the row, the epoch records and the new
state, or the error. The driver is the only process that opens the results directory, so rows
reach SQLite exactly once whichever executor computed them, and a Ray worker needs no access to
the driver's disk. Every executor restores the starting state from the same tensors, so their
rows are bit-identical at equal torch thread counts (intra-op reductions round differently
with a different number of threads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from prunebench.config.schema import RunConfig
from prunebench.engine.plan import StepPlan
from prunebench.engine.step import RunContext, compute_step
from prunebench.engine.workspace import Workspace

State = tuple[dict[str, torch.Tensor], dict[str, Any]]


@dataclass
class StepJob:
    key: str
    step: StepPlan
    owner: str  # run id written into the computed row
    cfg: RunConfig  # a run through this step; all of them share what the step reads
    label: str
    n_steps: int  # of the owner run, for progress
    parent: State | None  # None: start from the dense model


@dataclass
class StepResult:
    key: str
    row: dict[str, Any] | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    state: State | None = None
    error: str | None = None
    exception: Exception | None = None  # local executor only (never shipped back from Ray)


class Executor(Protocol):
    """Where the driver's ready steps are computed; results come back through `wait`."""

    name: str
    slots: int  # steps computed side by side (for the time estimate)

    def start(self) -> None: ...

    def has_room(self) -> bool: ...

    @property
    def busy(self) -> bool: ...

    def in_flight(self) -> list[StepJob]: ...

    def submit(self, job: StepJob, workspace: Workspace) -> None: ...

    def wait(self) -> list[tuple[StepJob, StepResult]]: ...

    def close(self) -> None: ...


def release_memory() -> None:
    """After a failure (e.g. CUDA out of memory), give cached GPU memory back before going on."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def compute_job(ctx: RunContext, job: StepJob) -> StepResult:
    """Restore the starting state, compute the step, return its row and new state (or the error).

    Any exception (NaN loss, out of memory, a bug in a criterion) fails this step only; the
    driver records it on every run through the step and carries on with the rest of the sweep.
    """
    try:
        model, pruner = (
            ctx.restore(*job.parent, source=job.key) if job.parent else ctx.fresh_dense()
        )
        model, row, epochs = compute_step(ctx, model, pruner, job.step, job.owner)
        state = ctx.pack(model, pruner, job.step)
        return StepResult(job.key, row, epochs, state)
    except Exception as exc:
        release_memory()
        return StepResult(job.key, error=f"{type(exc).__name__}: {exc}", exception=exc)
