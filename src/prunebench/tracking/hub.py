"""The driver's side of tracking: events go on a queue, one background thread logs them.

The driver calls `start`, `steps`, `run_finished`, `evaluations` and `close`; each only puts an
event on a queue, so a slow or dead tracking server never slows a step. The thread fans the
events out to the trackers. A tracker that raises is dropped with ONE warning (collected here,
printed by the driver on its own thread); the run goes on. `close` waits a bounded time for the
queue to drain. At `start` the thread catches up on steps stored earlier that a destination
lacks (a resumed sweep, or the same command run again with --log), and every tracker skips the
steps its destination already holds: each step is logged once. After the evaluations of
`eval:`, the driver passes every evaluation stored for the plan's runs (computed now or
earlier), and each tracker logs those its destination lacks, the same way, to runs that may
have finished already (MLflow takes metrics for a finished run by its id; TensorBoard opens
the run's directory again).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prunebench.tracking.base import (
    EvalRecord,
    RunInfo,
    Session,
    StepRecord,
    StoredRows,
    Tracker,
)
from prunebench.tracking.mlflow_tracker import MlflowTracker
from prunebench.tracking.spec import LogSpec, check_installed, check_writable
from prunebench.tracking.tensorboard_tracker import TensorBoardTracker

CLOSE_TIMEOUT_S = 60.0


class Tracking:
    """Fan-out of driver events to trackers, off the driver's thread."""

    def __init__(self, trackers: list[Tracker], close_timeout: float = CLOSE_TIMEOUT_S):
        self.trackers = list(trackers)
        self.close_timeout = close_timeout
        self._queue: queue.SimpleQueue[tuple[str, tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._warnings: list[str] = []
        self._lock = threading.Lock()
        self._runs: dict[str, RunInfo] = {}
        self._logged: dict[tuple[str, str], set[int]] = {}  # (tracker, run) -> steps held
        # (tracker, run) -> evaluations held, as (step, setting)
        self._evaluated: dict[tuple[str, str], set[tuple[int, str]]] = {}
        self._failed = False
        self.hints: dict[str, str] = {}  # tracker name -> the --log value that reaches it
        self.cpu_seconds: dict[str, float] = {}  # the thread's CPU time per kind of event

    # ---------------------------------------------------------------- the driver's calls
    def start(self, session: Session, runs: list[RunInfo], stored: StoredRows) -> None:
        if not self.trackers:
            return
        self._thread = threading.Thread(target=self._work, name="prunebench-tracking", daemon=True)
        self._thread.start()
        self._put("open", session, runs, stored)

    def steps(self, records: list[StepRecord]) -> None:
        if self.trackers:
            self._put("steps", records)

    def run_finished(self, run_id: str, status: str, error: str | None = None) -> None:
        if self.trackers:
            self._put("finish", run_id, status, error)

    def evaluations(self, records: list[EvalRecord]) -> None:
        """Stored evaluations of the plan's runs; each destination logs those it lacks."""
        if self.trackers and records:
            self._put("evaluations", records)

    def warnings(self) -> list[str]:
        """Warnings since the last call (each tracker warns at most once)."""
        with self._lock:
            out, self._warnings = self._warnings, []
        return out

    def close(self, timeout: float | None = None) -> list[str]:
        """Wait (at most `timeout`, default `close_timeout` seconds) for the queue to drain;
        return the warnings not yet shown."""
        timeout = self.close_timeout if timeout is None else timeout
        if self._thread is not None:
            self._put("close")
            self._queue.put(None)
            self._thread.join(timeout)
            if self._thread.is_alive():
                names = ", ".join(t.name for t in self.trackers)
                self._warn(
                    f"{names}: logging not finished after {timeout:g} s (server slow?); "
                    "the results are safe in results.sqlite: run the same command again with "
                    "--log to log the rest"
                )
            self._thread = None
        return self.warnings()

    # ---------------------------------------------------------------- the thread
    def _put(self, kind: str, *args: Any) -> None:
        self._queue.put((kind, args))

    def _warn(self, text: str) -> None:
        with self._lock:
            self._warnings.append(text)

    def _work(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            kind, args = event
            started = time.thread_time()
            for tracker in list(self.trackers):
                try:
                    getattr(self, f"_on_{kind}")(tracker, *args)
                except Exception as exc:
                    self._drop(tracker, exc)
            self.cpu_seconds[kind] = self.cpu_seconds.get(kind, 0.0) + time.thread_time() - started

    def _drop(self, tracker: Tracker, exc: Exception) -> None:
        self.trackers.remove(tracker)
        message = (str(exc).strip().splitlines() or [""])[0][:200]
        again = self.hints.get(tracker.name, tracker.name)
        self._warn(
            f"{tracker.name} logging stopped ({type(exc).__name__}: {message}); the run goes on "
            f"and the results are safe in results.sqlite: run the same command again with "
            f"--log {again} to log what is missing"
        )

    def _on_open(self, tracker: Tracker, session: Session, runs, stored: StoredRows) -> None:
        tracker.open(session)
        for run in runs:
            self._runs[run.run_id] = run
            logged = self._logged[(tracker.name, run.run_id)] = set(tracker.start_run(run))
            rows = stored.steps(run.run_id)
            for row in rows:
                if row["step"] not in logged:
                    epochs = stored.epochs(run.run_id, row["step"])
                    self._log(tracker, StepRecord(run.run_id, row, epochs))
            if run.status in ("done", "failed"):
                tracker.finish_run(run, run.status, run.fields.get("error"))

    def _log(self, tracker: Tracker, record: StepRecord) -> None:
        logged = self._logged[(tracker.name, record.run_id)]
        if record.step in logged:
            return
        tracker.log_step(self._runs[record.run_id], record, logged | {record.step})
        logged.add(record.step)

    def _on_steps(self, tracker: Tracker, records: list[StepRecord]) -> None:
        for record in records:
            self._log(tracker, record)

    def _on_evaluations(self, tracker: Tracker, records: list[EvalRecord]) -> None:
        for record in records:
            run = self._runs.get(record.run_id)
            if run is None:  # no stored row when tracking started
                continue
            key = (tracker.name, run.run_id)
            if key not in self._evaluated:
                self._evaluated[key] = set(tracker.held_evaluations(run))
            held = self._evaluated[key]
            if record.held not in held:
                tracker.log_evaluation(run, record, held | {record.held})
                held.add(record.held)

    def _on_finish(self, tracker: Tracker, run_id: str, status: str, error: str | None) -> None:
        self._failed = self._failed or status != "done"
        tracker.finish_run(self._runs[run_id], status, error)

    def _on_close(self, tracker: Tracker) -> None:
        tracker.close(self._failed)


# ---------------------------------------------------------------- building one from --log values

DefaultDir = Callable[[str], Path]  # backend -> its default directory beside the results


def resolve(specs: Sequence[LogSpec], default: DefaultDir) -> list[tuple[LogSpec, str]]:
    """Each destination once, with its location (the default one when none was given)."""
    out: dict[tuple[str, str], LogSpec] = {}
    for spec in specs:
        location = spec.location or str(default(spec.backend))
        out.setdefault((spec.backend, location), spec)
    return [(spec, location) for (_, location), spec in out.items()]


def check(specs: Sequence[LogSpec], default: DefaultDir) -> None:
    """Bad --log values fail here, before any compute: a missing extra, an unwritable folder."""
    for spec, location in resolve(specs, default):
        check_installed(spec)
        check_writable(spec, location)


def make_tracking(specs: Sequence[LogSpec], default: DefaultDir) -> Tracking:
    trackers: list[Tracker] = []
    hints: dict[str, str] = {}
    for spec, location in resolve(specs, default):
        if spec.backend == "mlflow":
            trackers.append(MlflowTracker(location))
        else:
            trackers.append(TensorBoardTracker(location))
        hints[spec.backend] = str(spec)
    tracking = Tracking(trackers)
    tracking.hints = hints
    return tracking
