"""Worker processes on this machine (`--executor processes`): a sweep's independent steps side
by side on every core of a CPU, without Ray."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from prunebench.config.identity import base_id
from prunebench.engine.executors.base import StepJob, StepResult
from prunebench.engine.executors.workers import StepWorker, WorkerPool, dense_payload
from prunebench.engine.workspace import Workspace


def serve(conn: Connection, threads: int | None) -> None:
    """A worker process's loop: compute each (job, dense payload) received, send the result
    back; stop on None or when the driver is gone."""
    worker = StepWorker(threads)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job, dense = message
        conn.send(worker.compute(job, [dense]))


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
    gets a dense model once and keeps it; jobs and results travel through pipes. A worker that
    dies fails its step and is replaced.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, threads: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.workers)
        self._idle: list[_Process] = []
        self._inflight: dict[Connection, tuple[StepJob, _Process]] = {}
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

    def submit(self, job: StepJob, workspace: Workspace) -> None:
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

    def wait(self) -> list[tuple[StepJob, StepResult]]:
        done = []
        for conn in multiprocessing.connection.wait(list(self._inflight)):
            job, worker = self._inflight.pop(conn)
            try:
                result = conn.recv()
            except (EOFError, OSError):  # the worker died (killed for memory, a crash)
                worker.process.join(timeout=5)
                code = worker.process.exitcode
                result = StepResult(job.key, error=f"worker process died (exit code {code})")
                conn.close()
                worker = self._spawn()
            self._idle.append(worker)
            done.append((job, result))
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
