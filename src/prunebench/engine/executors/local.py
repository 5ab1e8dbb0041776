"""The local executor: one step at a time in the driver's own process."""

from __future__ import annotations

from collections import deque

from prunebench.engine.executors.base import StepJob, StepResult, compute_job
from prunebench.engine.step import RunContext
from prunebench.engine.workspace import Workspace


class LocalExecutor:
    """Computes one job at a time in this process (live epoch progress, no start-up cost)."""

    name = "local"
    slots = 1  # steps computed side by side

    def __init__(self) -> None:
        self._queue: deque[StepJob] = deque()
        self._workspace: Workspace | None = None

    def start(self) -> None:
        pass

    def has_room(self) -> bool:
        return not self._queue

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    def in_flight(self) -> list[StepJob]:
        return list(self._queue)

    def submit(self, job: StepJob, workspace: Workspace) -> None:
        self._workspace = workspace
        self._queue.append(job)

    def context(self, job: StepJob) -> RunContext:
        """Where `job` is computed (the data-parallel executor shares it with its followers)."""
        return self._workspace.context(job.cfg)

    def wait(self) -> list[tuple[StepJob, StepResult]]:
        job = self._queue.popleft()
        ctx = self.context(job)
        ctx.progress.run_started(job.owner, job.label, job.n_steps, ctx.task.metric)
        ctx.progress.step_started(job.step.index, job.step.target, job.step.settings.max_epochs)
        return [(job, compute_job(ctx, job))]

    def close(self) -> None:
        self._queue.clear()
