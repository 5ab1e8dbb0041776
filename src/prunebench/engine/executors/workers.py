"""The worker side that worker processes and Ray actors share: a `StepWorker` that keeps data
and dense models between jobs, the executors' common bookkeeping (`WorkerPool`), and the dense
model as plain tensors for shipping (`dense_payload`, also used by the data-parallel launch).
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.config.identity import base_id
from prunebench.config.schema import RunConfig
from prunebench.data.base import DataBundle
from prunebench.devices import resolve_device
from prunebench.engine.executors.base import StepJob, StepResult, compute_job
from prunebench.engine.pretrain import Dense
from prunebench.engine.workspace import Workspace
from prunebench.models.build import build_model
from prunebench.tasks import Task


class StepWorker:
    """A worker (a Ray actor or a local worker process): keeps data and dense models between
    jobs (loading CIFAR once per worker)."""

    def __init__(self, threads: int | None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self._shipped: dict[str, Any] = {}  # base id -> the dense payload (Ray: an object ref)
        self._workspace = Workspace(self._dense_from_driver)

    def compute(self, job: StepJob, dense_ref: list[Any]) -> StepResult:
        """`dense_ref[0]`: the dense model of the job's base id (None: sent before)."""
        try:
            if dense_ref[0] is not None:
                self._shipped[base_id(job.cfg)] = dense_ref[0]
            ctx = self._workspace.context(job.cfg)
        except Exception as exc:
            return StepResult(job.key, error=f"{type(exc).__name__}: {exc}")
        result = compute_job(ctx, job)
        result.exception = None  # the message travels; the object may not pickle
        return result

    def _dense_from_driver(
        self, cfg: RunConfig, data: DataBundle, task: Task, device: torch.device
    ) -> Dense:
        shipped = self._shipped[base_id(cfg)]
        if not isinstance(shipped, dict):  # a Ray object ref
            import ray

            shipped = ray.get(shipped)
        return dense_from_payload(cfg, shipped, data)


class WorkerPool:
    """What the executors with workers share: idle workers, and the jobs in flight keyed by
    what `wait` waits on (a pipe, a Ray object ref) with the worker computing each."""

    _idle: list[Any]
    _inflight: dict[Any, tuple[StepJob, Any]]

    def has_room(self) -> bool:
        return bool(self._idle)

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    def in_flight(self) -> list[StepJob]:
        return [job for job, _ in self._inflight.values()]


def dense_payload(dense: Dense) -> dict[str, Any]:
    """The dense model as plain CPU tensors plus its metrics, for shipping to workers."""
    state = {k: v.detach().to("cpu").clone() for k, v in dense.model.state_dict().items()}
    return {"state": state, "metrics": dense.metrics, "base_id": dense.base_id}


def dense_from_payload(cfg: RunConfig, payload: dict[str, Any], data: DataBundle) -> Dense:
    """The dense model rebuilt from `dense_payload` (on a worker)."""
    model = build_model(cfg.model, data.info)
    model.load_state_dict(payload["state"])
    model = model.to(resolve_device(cfg.device))
    return Dense(model, payload["metrics"], payload["base_id"], reused=True)
