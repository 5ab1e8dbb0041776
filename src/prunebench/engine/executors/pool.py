"""Where a planned step is computed: in this process (local), in worker processes on this machine
(processes) or on Ray actors (one machine or a cluster).

Workers only compute. A job carries the step, any config of a run through it and the state it
starts from (None: the dense model); the outcome carries the row, the epoch records and the new
state, or the error. The driver (`driver.py`) is the only process that opens the results
directory, so rows reach SQLite exactly once whichever executor computed them, and a Ray worker
needs no access to the driver's disk. Every executor restores the starting state from the same
tensors, so their rows are bit-identical at equal torch thread counts (intra-op reductions round
differently with a different number of threads).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

import torch

from prunebench.config.identity import base_id
from prunebench.config.schema import RunConfig
from prunebench.data.base import DataBundle
from prunebench.devices import resolve_device
from prunebench.engine.executors.ray_auth import RayAuth, existing_cluster, private_instance
from prunebench.engine.plan import StepPlan
from prunebench.engine.pretrain import Dense
from prunebench.engine.step import RunContext, compute_step
from prunebench.engine.workspace import Workspace
from prunebench.errors import PrunebenchError
from prunebench.models.build import build_model
from prunebench.tasks import Task

State = tuple[dict[str, torch.Tensor], dict[str, Any]]


@dataclass
class NodeJob:
    key: str
    step: StepPlan
    owner: str  # run id written into the computed row
    cfg: RunConfig  # a run through this step; all of them share what the step reads
    label: str
    n_steps: int  # of the owner run, for progress
    parent: State | None  # None: start from the dense model


@dataclass
class NodeOutcome:
    key: str
    row: dict[str, Any] | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    state: State | None = None
    error: str | None = None
    exception: Exception | None = None  # local executor only (never shipped back from Ray)


class Executor(Protocol):
    """Where the driver's ready steps are computed; outcomes come back through `wait`."""

    name: str
    slots: int  # steps computed side by side (for the time estimate)

    def start(self) -> None: ...

    def has_room(self) -> bool: ...

    @property
    def busy(self) -> bool: ...

    def in_flight(self) -> list[NodeJob]: ...

    def submit(self, job: NodeJob, workspace: Workspace) -> None: ...

    def wait(self) -> list[tuple[NodeJob, NodeOutcome]]: ...

    def close(self) -> None: ...


def release_memory() -> None:
    """After a failure (e.g. CUDA out of memory), give cached GPU memory back before going on."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def compute_node(ctx: RunContext, job: NodeJob) -> NodeOutcome:
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
        return NodeOutcome(job.key, row, epochs, state)
    except Exception as exc:
        release_memory()
        return NodeOutcome(job.key, error=f"{type(exc).__name__}: {exc}", exception=exc)


class LocalExecutor:
    """Computes one job at a time in this process (live epoch progress, no start-up cost)."""

    name = "local"
    slots = 1  # steps computed side by side

    def __init__(self) -> None:
        self._queue: deque[NodeJob] = deque()
        self._workspace: Workspace | None = None

    def start(self) -> None:
        pass

    def has_room(self) -> bool:
        return not self._queue

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    def in_flight(self) -> list[NodeJob]:
        return list(self._queue)

    def submit(self, job: NodeJob, workspace: Workspace) -> None:
        self._workspace = workspace
        self._queue.append(job)

    def context(self, job: NodeJob) -> RunContext:
        """Where `job` is computed (the data-parallel executor shares it with its followers)."""
        return self._workspace.context(job.cfg)

    def wait(self) -> list[tuple[NodeJob, NodeOutcome]]:
        job = self._queue.popleft()
        ctx = self.context(job)
        ctx.progress.run_started(job.owner, job.label, job.n_steps, ctx.task.metric)
        ctx.progress.step_started(job.step.index, job.step.target, job.step.settings.max_epochs)
        return [(job, compute_node(ctx, job))]

    def close(self) -> None:
        self._queue.clear()


# ---------------------------------------------------------------- workers


class NodeWorker:
    """A worker (a Ray actor or a local worker process): keeps data and dense models between
    jobs (loading CIFAR once per worker)."""

    def __init__(self, threads: int | None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self._shipped: dict[str, Any] = {}  # base id -> the dense payload (Ray: an object ref)
        self._workspace = Workspace(self._dense_from_driver)

    def compute(self, job: NodeJob, dense_ref: list[Any]) -> NodeOutcome:
        """`dense_ref[0]`: the dense model of the job's base id (None: sent before)."""
        try:
            if dense_ref[0] is not None:
                self._shipped[base_id(job.cfg)] = dense_ref[0]
            ctx = self._workspace.context(job.cfg)
        except Exception as exc:
            return NodeOutcome(job.key, error=f"{type(exc).__name__}: {exc}")
        outcome = compute_node(ctx, job)
        outcome.exception = None  # the message travels; the object may not pickle
        return outcome

    def _dense_from_driver(
        self, cfg: RunConfig, data: DataBundle, task: Task, device: torch.device
    ) -> Dense:
        shipped = self._shipped[base_id(cfg)]
        if not isinstance(shipped, dict):  # a Ray object ref
            import ray

            shipped = ray.get(shipped)
        return dense_from_payload(cfg, shipped, data)


# ---------------------------------------------------------------- worker processes


def serve(conn: Connection, threads: int | None) -> None:
    """A worker process's loop: compute each (job, dense payload) received, send the outcome
    back; stop on None or when the driver is gone."""
    worker = NodeWorker(threads)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job, dense = message
        conn.send(worker.compute(job, [dense]))


class WorkerPool:
    """What the executors with workers share: idle workers, and the jobs in flight keyed by
    what `wait` waits on (a pipe, a Ray object ref) with the worker computing each."""

    _idle: list[Any]
    _inflight: dict[Any, tuple[NodeJob, Any]]

    def has_room(self) -> bool:
        return bool(self._idle)

    @property
    def busy(self) -> bool:
        return bool(self._inflight)

    def in_flight(self) -> list[NodeJob]:
        return [job for job, _ in self._inflight.values()]


@dataclass
class _Process:
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection
    dense: set[str] = field(default_factory=set)  # base ids this worker holds


class ProcessExecutor(WorkerPool):
    """Steps computed by `workers` processes on this machine, side by side: a sweep's
    independent steps use every core of a CPU without Ray.

    Workers are spawned (a forked process would inherit torch's thread pools) and use `threads`
    torch threads each (default: the CPUs shared out, at least one), so several small models
    train at once instead of one model splitting tiny operations across cores. Each worker
    gets a dense model once and keeps it; jobs and outcomes travel through pipes. A worker that
    dies fails its step and is replaced.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.workers)
        self._idle: list[_Process] = []
        self._inflight: dict[Connection, tuple[NodeJob, _Process]] = {}
        self._payloads: dict[str, dict[str, Any]] = {}

    def _spawn(self) -> _Process:
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs, self.threads), daemon=True)
        process.start()
        theirs.close()
        return _Process(process, mine)

    def start(self) -> None:
        if not self._idle and not self._inflight:
            self._idle = [self._spawn() for _ in range(self.workers)]

    @property
    def slots(self) -> int:
        """Steps computed side by side."""
        return self.workers

    def submit(self, job: NodeJob, workspace: Workspace) -> None:
        bid = base_id(job.cfg)
        worker = self._idle.pop()
        dense = None
        if bid not in worker.dense:
            if bid not in self._payloads:
                self._payloads[bid] = dense_payload(workspace.dense(job.cfg))
            dense = self._payloads[bid]
            worker.dense.add(bid)
        worker.conn.send((job, dense))
        self._inflight[worker.conn] = (job, worker)

    def wait(self) -> list[tuple[NodeJob, NodeOutcome]]:
        done = []
        for conn in multiprocessing.connection.wait(list(self._inflight)):
            job, worker = self._inflight.pop(conn)
            try:
                outcome = conn.recv()
            except (EOFError, OSError):  # the worker died (killed for memory, a crash)
                worker.process.join(timeout=5)
                code = worker.process.exitcode
                outcome = NodeOutcome(job.key, error=f"worker process died (exit code {code})")
                conn.close()
                worker = self._spawn()
            self._idle.append(worker)
            done.append((job, outcome))
        return done

    def close(self) -> None:
        workers = self._idle + [worker for _, worker in self._inflight.values()]
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)
            worker.conn.close()
        self._idle, self._inflight, self._payloads = [], {}, {}


# ---------------------------------------------------------------- Ray


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
        self._inflight: dict[Any, tuple[NodeJob, Any]] = {}
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
        self._actor_class = ray.remote(**self.options)(NodeWorker)
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

    def submit(self, job: NodeJob, workspace: Workspace) -> None:
        import ray

        bid = base_id(job.cfg)
        if bid not in self._dense_refs:  # shipped once; workers keep it
            self._dense_refs[bid] = ray.put(dense_payload(workspace.dense(job.cfg)))
        actor = self._idle.pop()
        ref = actor.compute.remote(job, [self._dense_refs[bid]])
        self._inflight[ref] = (job, actor)

    def wait(self) -> list[tuple[NodeJob, NodeOutcome]]:
        import ray

        ready, _ = ray.wait(list(self._inflight), num_returns=1)
        done = []
        for ref in ready:
            job, actor = self._inflight.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the worker died (e.g. killed for memory)
                text = str(exc).strip()
                first = text.splitlines()[0] if text else ""
                outcome = NodeOutcome(job.key, error=f"{type(exc).__name__}: {first}")
                if isinstance(exc, ray.exceptions.RayActorError):
                    actor = self._actor_class.remote(self.threads)
            self._idle.append(actor)
            done.append((job, outcome))
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
