"""Ray actors (`--executor ray`), on one machine or a cluster, with fractional GPUs per step;
authentication of the Ray instance is in `ray_auth.py`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import torch

from prunebench.config.identity import base_id
from prunebench.engine.executors.base import StepJob, StepResult
from prunebench.engine.executors.ray_auth import RayAuth, existing_cluster, private_instance
from prunebench.engine.executors.workers import StepWorker, WorkerPool, dense_payload
from prunebench.engine.workspace import Workspace
from prunebench.errors import PrunebenchError


def print_warning(message: str) -> None:
    """One line on stderr (the executor starts before the live display does)."""
    print(f"warning: {message}", file=sys.stderr)


def worker_count(resources: dict[str, float], gpus_per_step: float, requested: int | None) -> int:
    """How many steps run side by side: as asked, else one per GPU share (`gpus_per_step` of a
    GPU each: 0.25 puts four steps on every GPU), else one per CPU."""
    if requested:
        return requested
    if gpus_per_step > 0:
        return max(1, int(resources.get("GPU", 0) / gpus_per_step + 1e-9))
    return max(1, int(resources.get("CPU", 1)))


def actor_options(resources: dict[str, float], gpus_per_step: float, workers: int) -> dict:
    """Ray resources of one worker: one CPU for CPU steps; for GPU steps its GPU share and an
    equal part of the CPUs (at most one), so that the GPUs, not the CPUs, bound the workers."""
    if gpus_per_step <= 0:
        return {"num_cpus": 1, "num_gpus": 0}
    cpus = min(1.0, resources.get("CPU", 1) / workers)
    return {"num_cpus": cpus, "num_gpus": gpus_per_step}


class RayExecutor(WorkerPool):
    """Sends ready steps to Ray actors; independent subtrees run side by side.

    `gpus_per_step` is each worker's share of a GPU (Ray's fractional `num_gpus`: 0.25 runs four
    steps on one GPU; 1 one step per GPU); None takes one GPU per step when the cluster has GPUs.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        threads: int | None = None,
        gpus_per_step: float | None = 0.0,
        warn: Callable[[str], None] = print_warning,
    ) -> None:
        self.address = address
        self.warn = warn
        self._auth: RayAuth | None = None
        self.workers = workers
        self.threads = threads
        self.gpus_per_step = gpus_per_step
        self.options: dict[str, Any] = {}  # what each worker asked Ray for (set by start)
        self._started_ray = False
        self._actor_class: Any = None
        self._idle: list[Any] = []
        self._inflight: dict[Any, tuple[StepJob, Any]] = {}
        self._dense_refs: dict[str, Any] = {}

    def start(self) -> None:
        """Connect to (or start) Ray and create the workers; does nothing the second time."""
        if self._actor_class is not None:
            return
        try:
            import ray
        except ImportError:
            raise PrunebenchError(
                "--executor ray needs Ray: pip install 'prunebench[ray]'"
            ) from None
        if not ray.is_initialized():
            self._init_ray(ray)
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        if self.gpus_per_step is None:
            self.gpus_per_step = 1.0 if gpus else 0.0
        if self.gpus_per_step > 0 and gpus < self.gpus_per_step:
            self.close()
            raise PrunebenchError(
                f"--gpus-per-step {self.gpus_per_step:g} but the Ray cluster has {gpus:g} GPUs"
            )
        self.workers = worker_count(resources, self.gpus_per_step, self.workers)
        self.options = actor_options(resources, self.gpus_per_step, self.workers)
        self.threads = self.threads or torch.get_num_threads()
        self._actor_class = ray.remote(**self.options)(StepWorker)
        self._idle = [self._actor_class.remote(self.threads) for _ in range(self.workers)]

    @property
    def slots(self) -> int:
        """Steps computed side by side."""
        return self.workers or 1

    def _init_ray(self, ray: Any) -> None:
        """Start a local instance with a private token, or join `address` with the user's."""
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if self.address:
            kwargs["address"] = self.address
            self._auth = existing_cluster(self.address, self.warn)
        else:
            kwargs["num_cpus"] = self.workers or os.cpu_count() or 1
            self._auth = private_instance(self.warn)
        try:
            ray.init(**kwargs)
        except Exception as exc:  # ConnectionError, ValueError, ... depending on the address
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self._auth.restore()
            raise PrunebenchError(
                f"cannot start or reach Ray (--address {self.address}): {first}"
            ) from None
        self._started_ray = True

    def submit(self, job: StepJob, workspace: Workspace) -> None:
        import ray

        bid = base_id(job.cfg)
        if bid not in self._dense_refs:  # shipped once; workers keep it
            self._dense_refs[bid] = ray.put(dense_payload(workspace.dense(job.cfg)))
        actor = self._idle.pop()
        ref = actor.compute.remote(job, [self._dense_refs[bid]])
        self._inflight[ref] = (job, actor)

    def wait(self) -> list[tuple[StepJob, StepResult]]:
        import ray

        ready, _ = ray.wait(list(self._inflight), num_returns=1)
        done = []
        for ref in ready:
            job, actor = self._inflight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the worker died (e.g. killed for memory)
                text = str(exc).strip()
                first = text.splitlines()[0] if text else ""
                result = StepResult(job.key, error=f"{type(exc).__name__}: {first}")
                if isinstance(exc, ray.exceptions.RayActorError):
                    actor = self._actor_class.remote(self.threads)
            self._idle.append(actor)
            done.append((job, result))
        return done

    def close(self) -> None:
        import ray

        self._inflight.clear()
        self._idle.clear()
        self._dense_refs.clear()
        self._actor_class = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
        if self._auth is not None:
            self._auth.restore()
            self._auth = None
