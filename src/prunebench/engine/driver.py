"""Running a plan: the driver picks ready steps, hands them to an executor, and has their results
written (`run_rows.RunBook`).

The driver is the ONLY writer of the results directory. For each computed step it writes, in
one SQLite transaction, the checkpoint (renamed into place), its sha256 and the step's row for
EVERY run through it; a run is marked done when its last row lands. So a sweep killed at any
instant leaves whole steps or nothing, and running the same command again picks up where it
stopped (`resume.py`: what is stored is reused, the rest computed with the same per-step seeds).
After the steps, the evaluations of `eval:` run on the finished runs' stored steps
(`step_evaluation.py`); bad input to them is refused before any compute, like every check.
Then the trackers get every evaluation stored for the plan's runs and log what they lack, to
runs that may have finished already.

A step that raises (NaN loss, out of memory, any exception) fails the runs through it, with the
error message; other steps go on. A dense model whose pretraining fails fails the runs that
start from it, the same way. Failed runs are tried again by the next invocation. A disk that
refuses a write (`StorageError`) or Ctrl-C stops the invocation: runs not finished are marked
failed (with the reason) or interrupted, and the next invocation resumes them.

Several processes can work on one directory: each takes a lease on a step (or dense model)
before computing it (`leases.py`), takes other ready steps while another process holds a lease,
and picks up what the other stored; a lease whose owner stopped beating is taken over.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence

from prunebench.engine.adaptive import AdaptivePlanner
from prunebench.engine.dead_runs import mark_dead_runs
from prunebench.engine.dense_models import stored_dense
from prunebench.engine.estimate import estimate as estimate_plan
from prunebench.engine.executors.base import Executor, StepJob
from prunebench.engine.executors.local import LocalExecutor
from prunebench.engine.leases import LEASE_STALE_S, Leases
from prunebench.engine.plan import Plan
from prunebench.engine.resume import prepare_store, take_stock
from prunebench.engine.run_rows import RunBook, SweepSummary
from prunebench.engine.step_evaluation import StepEvaluator
from prunebench.engine.workspace import Workspace
from prunebench.errors import ChecksumMismatch, StorageError
from prunebench.progress import Progress
from prunebench.store.database import Store
from prunebench.tracking.hub import check, make_tracking
from prunebench.tracking.spec import LogSpec, parse_log


class Driver:
    """One invocation's scheduler: ready steps in critical-path order, leased, computed by the
    executor, written by the run book."""

    def __init__(
        self,
        plan: Plan,
        store: Store,
        executor: Executor,
        progress: Progress,
        log: Sequence[str] = (),
        sweep: str | None = None,
        stale_after: float = LEASE_STALE_S,
        started: float | None = None,
    ):
        # time.monotonic() when the command started (default: now): the sweep's one clock
        self.started = time.monotonic() if started is None else started
        self.plan, self.store, self.executor, self.progress = plan, store, executor, progress
        self.sweep = sweep
        self.log_specs = log_specs(plan, log)
        damaged = prepare_store(store, progress)
        for run_id in mark_dead_runs(store):  # issue 23: a native crash left them running
            progress.message(f"run {run_id} was left running by a process that died: marked failed")
        self.stock = take_stock(plan, store, progress, damaged)
        self.book = RunBook(plan, store, self.stock, progress)
        self.summary = self.book.summary
        self.leases = Leases(store, stale_after)
        self.workspace = Workspace(stored_dense(store, progress, self.leases), progress)
        self.adaptive = AdaptivePlanner(plan, store, self.stock, self.book, self.workspace)
        self.evaluator = StepEvaluator(plan, store, self.workspace, progress)
        self._order = {k: i for i, k in enumerate(plan.nodes)}
        self._critical = plan.critical_path()
        self._heap: list[tuple[int, int, str]] = []
        self._waiting: set[str] = set()  # ready, but leased by another process
        self._steps_done = 0

    def _push(self, key: str) -> None:
        heapq.heappush(self._heap, (-self._critical[key], self._order[key], key))

    def _ready_at_start(self) -> None:
        for key in self.stock.needed:
            parent = self.plan.nodes[key].step.parent_key
            if self.plan.nodes[key].depth == 1 or parent in self.stock.stored:
                self._push(key)

    def _job(self, key: str) -> StepJob:
        node = self.plan.nodes[key]
        owner = self.plan.run(self.book.live_runs(key)[0])
        parent = None
        if node.depth > 1:
            parent = self.store.load_checkpoint(node.step.parent_key)
        label = owner.title if len(node.runs) == 1 else f"{owner.title} (+{len(node.runs) - 1})"
        return StepJob(key, node.step, owner.run_id, owner.cfg, label, len(owner.steps), parent)

    def _next(self, key: str) -> StepJob | None:
        """Lease a ready step and make its job; None when another process has it or stored
        it, or its parent turned out damaged (it is computed again first)."""
        state = self.leases.take("checkpoint", key, self.stock.seen.get(key))
        if state == "busy":
            self._waiting.add(key)
            return None
        if state == "stored":
            self._stored_elsewhere(key)
            return None
        try:
            return self._job(key)
        except ChecksumMismatch as exc:  # the parent changed on disk since the start
            self.leases.release("checkpoint", key)
            self._recompute_parent(key, exc)
        except Exception as exc:  # an unreadable parent checkpoint fails its runs
            self.leases.release("checkpoint", key)
            self.book.fail(key, f"{type(exc).__name__}: {exc}")
        return None

    def _recompute_parent(self, key: str, exc: Exception) -> None:
        stock = self.stock
        parent = self.plan.nodes[key].step.parent_key
        if parent not in stock.stored:  # already being recomputed; `key` follows when it lands
            return
        self.progress.warning(f"{exc}; computing that step again")
        stock.stored.discard(parent)
        stock.needed.add(parent)
        stock.seen[parent] = self.store.written_at("checkpoint").get(parent)
        for rid in self.book.live_runs(parent):
            stock.remaining[rid] += 1
        grandparent = self.plan.nodes[parent].step.parent_key
        if self.plan.nodes[parent].depth == 1 or grandparent in stock.stored:
            self._push(parent)
        elif grandparent not in stock.needed:
            self.book.fail(key, str(exc))

    def _stored_elsewhere(self, key: str) -> None:
        """Another process stored this step since we looked: take its rows and go on below."""
        sources = self.store.stored_steps([key])
        if key not in sources:  # what it stored does not check out: compute it here
            self.stock.seen[key] = self.store.written_at("checkpoint").get(key)
            self._push(key)
            return
        self.book.take_stored(key, sources[key])
        self._steps_done += 1
        self._landed(key, self.book.live_runs(key))

    def _landed(self, key: str, targets: list[str]) -> None:
        for new in self.adaptive.plan_next(key, targets):  # children of `key`: pushed below
            self._order[new] = len(self._order)
            self._critical[new] = 1 + self.plan.adaptive_tail(new)
        self.book.landed(key, targets)
        for child in self.plan.nodes[key].children:
            if child in self.stock.needed:
                self._push(child)

    def _estimate(self) -> tuple[float, float] | None:
        """Seconds the steps left will take (a few timed batches per model and data), for the
        live display's ETA; None for a quiet one, or when timing fails (the sweep goes on)."""
        if not (self.progress.wants_estimate and self.stock.needed):
            return None
        try:
            est = estimate_plan(self.plan, self.stock.needed, self.workspace.data)
        except Exception:
            return None
        return est.side_by_side(getattr(self.executor, "slots", 1), with_pretraining=False)

    def _warn(self, messages: list[str]) -> None:
        for text in messages:
            self.progress.warning(text)

    def _update(self) -> None:
        self._warn(self.book.tracking.warnings())
        current = [job.label for job in self.executor.in_flight()]
        self.progress.sweep_update(
            self._steps_done, len(self.summary.done), len(self.summary.failed), current
        )

    def _retry_waiting(self) -> None:
        for key in self._waiting:
            self._push(key)
        self._waiting.clear()

    def _submit_ready(self) -> None:
        """Hand ready steps to the executor while it has room."""
        while self._heap and self.executor.has_room():
            _, _, key = heapq.heappop(self._heap)
            if key in self.stock.stored or not self.book.live_runs(key):
                continue
            job = self._next(key)
            if job is not None:
                self.executor.submit(job, self.workspace)

    def _collect(self) -> None:
        """Write what the executor computed (or record its failures)."""
        for job, result in self.executor.wait():
            self._steps_done += 1
            if result.error is not None:
                self.leases.release("checkpoint", job.key)
                self.book.fail(job.key, result.error, result.exception)
            else:
                self._landed(job.key, self.book.write(job.key, result, self.leases.owner))
            self._update()

    def _loop(self) -> None:
        self.book.copy_stored()
        for new in self.adaptive.resume():
            self._order[new] = len(self._order)
            self._critical[new] = 1 + self.plan.adaptive_tail(new)
        self.book.start_tracking(self.sweep)
        self.book.finish_complete()
        self._ready_at_start()
        self.progress.runs_planned({r.run_id: (r.title, len(r.steps)) for r in self.plan.runs})
        self.progress.sweep_started(
            len(self.stock.needed), len(self.stock.active), self._estimate()
        )
        while self._heap or self.executor.busy or self._waiting:
            self._submit_ready()
            self._update()
            if not self.executor.busy:
                if self._waiting and not self._heap:  # nothing to do but wait for others
                    time.sleep(self.leases.poll)
                    self.summary.waited += self.leases.poll
                    self._retry_waiting()
                continue
            self._collect()
            self._retry_waiting()

    def _finished(self) -> list[str]:
        """The plan's runs that are done (now or by an earlier invocation)."""
        done = {r["run_id"] for r in self.store.runs() if r["status"] == "done"}
        return [r.run_id for r in self.plan.runs if r.run_id in done]

    def run(self) -> SweepSummary:
        started = self.started
        self.progress.clock_start = started  # one clock for the display and the summary
        for run in self.plan.runs:  # bad input fails here, before anything is written
            if run.run_id in self.stock.active:
                self.workspace.check(run.cfg)
        self.evaluator.check()  # eval.lm_eval's tasks, found in local files
        check(self.log_specs, self.store.log_dir)
        self.executor.start()  # a Ray address that does not answer, too
        self.book.tracking = make_tracking(self.log_specs, self.store.log_dir)
        interrupted = True
        try:
            self.book.start_runs(self.workspace)
            with self.store.held_open():
                self._loop()
                if self.evaluator.runs():  # eval: in some run's config
                    self.evaluator.evaluate(self._finished())
                self.book.track_evaluations()  # computed now or earlier: what trackers lack
            interrupted = False
        except KeyboardInterrupt:
            self.book.stop("interrupted", "interrupted; run the same command again to resume")
            raise
        except StorageError as exc:
            left = self.book.stop("failed", str(exc))
            raise StorageError(
                f"{exc}; {left} unfinished runs marked failed; nothing was half-written: free "
                "space and run the same command again to resume"
            ) from None
        finally:
            self.executor.close()
            self.leases.close()
            # Ctrl-C or a crash: do not hold the user for a slow server (a rerun catches up)
            warnings = self.book.tracking.close(5.0 if interrupted else None)
            self.summary.seconds = time.monotonic() - started
            self.progress.sweep_finished(self.summary.seconds)
            self._warn(warnings)
        return self.summary


def log_specs(plan: Plan, log: Sequence[str] = ()) -> list[LogSpec]:
    """The destinations to log to: `log` (the --log values) and every run's `log:` key."""
    texts = [*log, *(text for run in plan.runs for text in run.cfg.log)]
    return [parse_log(text) for text in dict.fromkeys(texts)]


def execute_plan(
    plan: Plan,
    store: Store,
    executor: Executor | None = None,
    progress: Progress | None = None,
    log: Sequence[str] = (),
    sweep: str | None = None,
    stale_after: float = LEASE_STALE_S,
    started: float | None = None,
) -> SweepSummary:
    """Compute every run of `plan` into `store` (resuming, reusing stored steps, sharing the
    work with other processes on the same directory); log to the `log` destinations
    (mlflow[=URI], tensorboard[=DIR]) and those in the runs' configs, with one parent run named
    `sweep` when given. `started`: the command's time.monotonic() at its start, so that the
    display, the summary and the wall clock give one duration (default: now)."""
    executor = executor or LocalExecutor()
    progress = progress or Progress()
    return Driver(plan, store, executor, progress, log, sweep, stale_after, started).run()
