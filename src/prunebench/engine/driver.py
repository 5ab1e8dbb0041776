"""Running a plan: the driver picks ready steps, hands them to an executor, and writes results.

The driver is the ONLY writer of the results directory. For each computed step it writes, in
one SQLite transaction, the checkpoint (renamed into place), its sha256 and the step's row for
EVERY run through it; a run is marked done when its last row lands. So a sweep killed at any
instant leaves whole steps or nothing, and running the same command again picks up where it
stopped: steps already stored (row + checkpoint, both checked against their digest / sha256)
are not recomputed, rows a run lacks are copied from them (reused=1), and the rest is computed
with the same per-step seeds as before. A checkpoint or dense model that no longer matches its
sha256 is computed again (one warning line); a row that fails its digest is rewritten.

A step that raises (NaN loss, out of memory, any exception) fails the runs through it, with the
error message; other steps go on. A dense model whose pretraining fails fails the runs that
start from it, the same way. Failed runs are tried again by the next invocation. A disk that
refuses a write (`StorageError`) or Ctrl-C stops the invocation: runs not finished are marked
failed (with the reason) or interrupted, and the next invocation resumes them.

Several processes can work on one directory: each claims a step (or dense model) before
computing it (`Claims`), takes other ready steps while another process holds a claim, and picks
up what the other stored; a claim whose owner stopped beating is taken over.
"""

from __future__ import annotations

import heapq
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import torch

from prunebench.config.identity import SCHEMA_VERSION, base_id, digest, run_id
from prunebench.config.schema import RunConfig
from prunebench.data.base import DataBundle
from prunebench.engine.estimate import estimate as estimate_plan
from prunebench.engine.executors.pool import Executor, LocalExecutor, NodeJob, NodeOutcome
from prunebench.engine.migrate import upgrade
from prunebench.engine.plan import Node, Plan, build_plan
from prunebench.engine.pretrain import Dense, train_dense
from prunebench.engine.step import RunContext
from prunebench.engine.workspace import Workspace
from prunebench.errors import (
    CheckpointError,
    ChecksumMismatch,
    PrunebenchError,
    StorageError,
)
from prunebench.models.build import build_model
from prunebench.progress import Progress
from prunebench.store.checkpoints import load_weights
from prunebench.store.database import Store
from prunebench.store.schema import RUN_COLUMNS, dumps
from prunebench.tasks import Task
from prunebench.tracking.base import RunInfo, Session, StepRecord
from prunebench.tracking.hub import Tracking, check, make_tracking
from prunebench.tracking.spec import LogSpec, parse_log

CLAIM_STALE_S = 60.0  # a claim whose heartbeat is older than this is taken over


class Claims:
    """This process's claims on the steps and dense models of one results directory: taken
    before computing, kept fresh by a heartbeat thread, dropped with the result (or on close).
    Another process's claim is taken over when its heartbeat is older than `stale_after`
    seconds, or at once when its owner was a process of this machine that is gone (a killed
    sweep run again does not wait)."""

    def __init__(self, store: Store, stale_after: float = CLAIM_STALE_S) -> None:
        self.store, self.stale_after = store, stale_after
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.poll = min(0.5, stale_after / 10)  # how often a waiting process looks again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self, kind: str, key: str, seen: float | None) -> str:
        """'leased', 'busy' (another process is on it) or 'stored' (see `Store.lease`)."""
        state = self.store.lease(kind, key, self.owner, seen, self._may_take)
        if state == "leased" and self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="claims", daemon=True)
            self._thread.start()
        return state

    def release(self, kind: str, key: str) -> None:
        with suppress(PrunebenchError):
            self.store.release(self.owner, kind, key)

    def _may_take(self, owner: str, heartbeat: float) -> bool:
        return time.time() - heartbeat > self.stale_after or _gone(owner)

    def _beat(self) -> None:
        while not self._stop.wait(self.stale_after / 4):
            with suppress(Exception):  # a busy or full disk: the claim may go stale, no more
                self.store.heartbeat(self.owner)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with suppress(PrunebenchError):
            self.store.release(self.owner)


def _gone(owner: str) -> bool:
    """Whether a claim's owner was a process of this machine that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():  # an earlier driver of this process, closed without releasing
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's process)
        return False
    return False


def stored_dense(store: Store, progress: Progress | None = None, claims: Claims | None = None):
    """The driver's source of dense models: the one stored under the config's base id (checked
    against its sha256), else trained now and stored (the driver is the only writer of the
    results directory). A stored one that does not match its hash or does not load is trained
    again, with one warning. With `claims`, a dense model that another process is training is
    waited for, not trained twice."""
    progress = progress or Progress()
    warned: set[str] = set()  # base ids, one warning / message each
    waited: set[str] = set()

    def source(cfg: RunConfig, data: DataBundle, task: Task, device: torch.device) -> Dense:
        model = build_model(cfg.model, data.info)
        bid = base_id(cfg)
        while True:
            seen = store.written_at("dense").get(bid)
            try:
                stored = store.load_dense(bid)
                if stored is not None:
                    tensors, meta = stored
                    load_weights(model, tensors, str(store.dense_path(bid)))
                    return Dense(model.to(device), meta["metrics"], bid, reused=True)
            except (CheckpointError, KeyError) as exc:
                if bid not in warned:
                    warned.add(bid)
                    progress.warning(f"{exc}; training the dense model again")
            if claims is None:
                break
            state = claims.take("dense", bid, seen)
            if state == "leased":
                break
            if state == "busy":  # another process is training it
                if bid not in waited:
                    waited.add(bid)
                    progress.message(f"waiting for another process to pretrain {bid}")
                time.sleep(claims.poll)
        try:
            dense, history = train_dense(cfg, data, task, device, progress)
            meta = {
                "base_id": bid,
                "metrics": dense.metrics,
                "history": history,
                "config": cfg.model_dump(mode="json"),
            }
            owner = claims.owner if claims else None
            store.save_dense(bid, dense.model.state_dict(), meta, owner=owner)
        except BaseException:
            if claims is not None:
                claims.release("dense", bid)
            raise
        return dense

    return source


def dense_model(cfg: RunConfig, store: Store, progress: Progress | None = None) -> Dense:
    """The dense model of `cfg` (`prunebench pretrain`): reused from `store` or trained now,
    after the same model checks as a run."""
    workspace = Workspace(stored_dense(store, progress), progress)
    workspace.check(cfg)
    return workspace.dense(cfg)


def config_fields(cfg: RunConfig, n_steps: int) -> dict[str, Any]:
    """What a run is, from its config alone (all a run whose dense model failed gets)."""
    return {
        "name": cfg.name,
        "regime": cfg.regime.name,
        "target": cfg.regime.final_target,
        "structure": cfg.prune.structure,
        "criterion": cfg.prune.criterion,
        "scope": cfg.prune.scope,
        "seed": cfg.seed,
        "model": cfg.model.name,
        "dataset": cfg.data.name,
        "base_id": base_id(cfg),
        "n_steps": n_steps,
        "schedule_json": dumps(cfg.regime.schedule()),
        "config_json": dumps(cfg.model_dump(mode="json")),
        "schema_version": SCHEMA_VERSION,
    }


def run_fields(ctx: RunContext, n_steps: int) -> dict[str, Any]:
    """The run's row: what it is (config, regime, model, ...) and its dense model's figures."""
    dense = {f"dense_{k}": v for k, v in ctx.dense.metrics.items() if f"dense_{k}" in RUN_COLUMNS}
    return {
        **config_fields(ctx.cfg, n_steps),
        "task": ctx.task.name,
        "metric": ctx.task.metric,
        "base_id": ctx.dense.base_id,
        "prunable_json": dumps(ctx.describe_prunable()),
        "dense_params": ctx.dense_params,
        "device": str(ctx.device),
        **dense,
    }


@dataclass
class SweepOutcome:
    runs: int
    already_done: int  # finished before this invocation
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run id -> error
    exceptions: dict[str, Exception] = field(default_factory=dict)  # run id -> (local) error
    computed: int = 0  # steps computed now
    copied: int = 0  # rows copied from steps stored earlier
    by_others: int = 0  # steps another process computed while this one ran
    waited: float = 0.0  # seconds idle, waiting for steps another process had claimed
    shared: int = 0  # rows of other runs written with a step computed now (reused=1 too)
    seconds: float = 0.0


def _epochs_only(epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in ("run_id", "step")} for e in epochs]


def check_stored(plan: Plan, have: dict[str, dict[int, str]]) -> None:
    """Stored rows of a planned run must carry the planned step keys (else: a config changed
    meaning without a schema bump); refuse before computing anything."""
    for run in plan.runs:
        stored = have.get(run.run_id, {})
        for step in run.steps:
            if step.index in stored and stored[step.index] != step.key:
                raise PrunebenchError(
                    f"run {run.run_id} ({run.label}) has stored steps that do not match its "
                    "config; use a new --results directory"
                )


class Driver:
    """State of one invocation: what is stored, what is left, who owns which rows."""

    def __init__(
        self,
        plan: Plan,
        store: Store,
        executor: Executor,
        progress: Progress,
        log: Sequence[str] = (),
        sweep: str | None = None,
        stale_after: float = CLAIM_STALE_S,
    ):
        self.plan, self.store, self.executor, self.progress = plan, store, executor, progress
        self.sweep = sweep
        self.log_specs = log_specs(plan, log)
        self.tracking = Tracking([])
        upgrade(store)
        adopted, damaged = store.adopt_files()
        if adopted:
            progress.message(
                f"recorded the sha256 of {adopted} files written by an earlier version"
            )
        # stored steps before rows: a step another process stores in between is then taken
        # from it (`_stored_elsewhere`) rather than copied over its rows
        self.sources = store.stored_steps(plan.nodes, damaged)
        for key in damaged:  # an earlier version's checkpoint that does not read, too
            self.sources.pop(key, None)
        self.have = store.run_steps()
        ids = {r.run_id for r in plan.runs}
        bad_rows = [(r, s) for r, s in store.row_check().bad if r in ids]
        for rid, step in bad_rows:
            del self.have[rid][step]  # rewritten below, like a missing row
        if bad_rows:
            shown = ", ".join(f"run {r} step {s}" for r, s in bad_rows[:3])
            more = f" and {len(bad_rows) - 3} more" if len(bad_rows) > 3 else ""
            progress.warning(
                f"{len(bad_rows)} step rows do not match their digest ({shown}{more}): "
                "changed after they were written; rewriting them"
            )
        check_stored(plan, self.have)
        status = {r["run_id"]: r["status"] for r in store.runs()}
        damaged = {k: v for k, v in damaged.items() if k in plan.nodes}
        for reason in damaged.values():
            progress.warning(f"{reason}; computing that step again")
        self.stored = set(self.sources)
        self.cumulative = {k: self.sources[k]["cumulative_epochs"] for k in self.stored}
        self.seen = store.written_at("checkpoint")  # to tell a step another process stores
        self.active = {
            r.run_id
            for r in plan.runs
            if status.get(r.run_id) != "done"
            or any(s.index not in self.have.get(r.run_id, {}) for s in r.steps)
            or any(s.key in damaged for s in r.steps)
        }
        self.needed = {
            k
            for k, node in plan.nodes.items()
            if k not in self.stored and any(r in self.active for r in node.runs)
        }
        self.remaining = {
            rid: sum(s.key not in self.stored for s in plan.run(rid).steps) for rid in self.active
        }
        self.failed: dict[str, str] = {}
        self.outcome = SweepOutcome(len(plan.runs), len(plan.runs) - len(self.active))
        self.claims = Claims(store, stale_after)
        self.workspace = Workspace(stored_dense(store, progress, self.claims), progress)
        self._order = {k: i for i, k in enumerate(plan.nodes)}
        self._critical = plan.critical_path()
        self._heap: list[tuple[int, int, str]] = []
        self._waiting: set[str] = set()  # ready, but claimed by another process
        self._started: set[str] = set()  # runs this invocation marked as running
        self._steps_done = 0

    # ---------------------------------------------------------------- set-up
    def start_runs(self) -> None:
        """Pretrain what is missing, then mark every active run as running (resume included).
        A dense model whose computing fails (pretraining diverged, out of memory, ...) fails
        the runs that start from it, recorded like a failed step; the others go on. A user
        error stops the invocation as before (one line, exit 2)."""
        dense_failed: dict[str, tuple[str, Exception]] = {}
        for run in self.plan.runs:
            if run.run_id not in self.active:
                continue
            bid = base_id(run.cfg)
            if bid not in dense_failed:
                try:
                    ctx = self.workspace.context(run.cfg)
                except PrunebenchError:  # bad input (weights that do not fit, ...), a full disk
                    raise
                except Exception as exc:
                    dense_failed[bid] = (f"pretraining: {type(exc).__name__}: {exc}", exc)
            if bid in dense_failed:
                message, exc = dense_failed[bid]
                self.store.start_run(run.run_id, config_fields(run.cfg, len(run.steps)))
                self.failed[run.run_id] = message
                self.outcome.exceptions[run.run_id] = exc
                self._finish(run.run_id, "failed", message)
                continue
            self.store.start_run(run.run_id, run_fields(ctx, len(run.steps)))
            self._started.add(run.run_id)

    def copy_stored(self) -> None:
        """Rows that active runs lack for steps stored earlier (by any run), one transaction
        per step."""
        for key in self.plan.nodes:
            if key not in self.stored:
                continue
            node = self.plan.nodes[key]
            targets = [r for r in self._live_runs(key) if node.depth not in self.have.get(r, {})]
            if targets:
                self._copy(key, self.sources[key], targets)

    def _copy(self, key: str, source: dict[str, Any], targets: list[str]) -> None:
        node = self.plan.nodes[key]
        epochs = _epochs_only(self.store.epochs(source["run_id"], source["step"]))
        rows = [
            ({**source, **self._own(r, node), "reused": 1, "created_at": None}, epochs)
            for r in targets
        ]
        self.store.write_steps(rows)
        self.outcome.copied += len(rows)

    # ---------------------------------------------------------------- the loop
    def _push(self, key: str) -> None:
        heapq.heappush(self._heap, (-self._critical[key], self._order[key], key))

    def _ready_at_start(self) -> None:
        for key in self.needed:
            parent = self.plan.nodes[key].step.parent_key
            if self.plan.nodes[key].depth == 1 or parent in self.stored:
                self._push(key)

    def _live_runs(self, key: str) -> list[str]:
        return [r for r in self.plan.nodes[key].runs if r in self.active and r not in self.failed]

    def _job(self, key: str) -> NodeJob:
        node = self.plan.nodes[key]
        owner = self.plan.run(self._live_runs(key)[0])
        parent = None
        if node.depth > 1:
            parent = self.store.load_checkpoint(node.step.parent_key)
        label = owner.title if len(node.runs) == 1 else f"{owner.title} (+{len(node.runs) - 1})"
        return NodeJob(key, node.step, owner.run_id, owner.cfg, label, len(owner.steps), parent)

    def _next(self, key: str) -> NodeJob | None:
        """Claim a ready step and make its job; None when another process has it or stored
        it, or its parent turned out damaged (it is computed again first)."""
        state = self.claims.take("checkpoint", key, self.seen.get(key))
        if state == "busy":
            self._waiting.add(key)
            return None
        if state == "stored":
            self._stored_elsewhere(key)
            return None
        try:
            return self._job(key)
        except ChecksumMismatch as exc:  # the parent changed on disk since the start
            self.claims.release("checkpoint", key)
            self._recompute_parent(key, exc)
        except Exception as exc:  # an unreadable parent checkpoint fails its runs
            self.claims.release("checkpoint", key)
            self._fail(key, f"{type(exc).__name__}: {exc}")
        return None

    def _recompute_parent(self, key: str, exc: Exception) -> None:
        parent = self.plan.nodes[key].step.parent_key
        if parent not in self.stored:  # already being recomputed; `key` follows when it lands
            return
        self.progress.warning(f"{exc}; computing that step again")
        self.stored.discard(parent)
        self.needed.add(parent)
        self.seen[parent] = self.store.written_at("checkpoint").get(parent)
        for rid in self._live_runs(parent):
            self.remaining[rid] += 1
        grandparent = self.plan.nodes[parent].step.parent_key
        if self.plan.nodes[parent].depth == 1 or grandparent in self.stored:
            self._push(parent)
        elif grandparent not in self.needed:
            self._fail(key, str(exc))

    def _finish(self, rid: str, status: str, error: str | None = None) -> None:
        self.store.finish_run(rid, status, error)
        self.tracking.run_finished(rid, status, error)
        title = self.plan.run(rid).title
        self.progress.message(f"{title}: {status}" + (f" ({error})" if error else ""))
        if status == "done":
            if rid not in self.outcome.done:  # again after a step below it was recomputed
                self.outcome.done.append(rid)
        else:
            self.outcome.failed[rid] = error or ""

    def _fail(self, key: str, error: str, exception: Exception | None = None) -> None:
        node = self.plan.nodes[key]
        message = f"step {node.depth} (target {node.step.target:.4f}): {error}"
        for rid in self._live_runs(key):
            self.failed[rid] = message
            if exception is not None:
                self.outcome.exceptions[rid] = exception
            self._finish(rid, "failed", message)

    def _own(self, rid: str, node: Node) -> dict[str, Any]:
        """The fields of a shared step's row that come from the run itself: its id, and its own
        schedule's target and increment (equal to the key's up to the last bits)."""
        step = self.plan.run(rid).steps[node.depth - 1]
        return {"run_id": rid, "target": step.target, "increment": step.increment}

    def _write(self, key: str, outcome: NodeOutcome) -> None:
        node = self.plan.nodes[key]
        parent_cum = 0 if node.depth == 1 else self.cumulative[node.step.parent_key]
        cumulative = parent_cum + outcome.row["epochs"]
        owner = outcome.row["run_id"]
        epochs = _epochs_only(outcome.epochs)
        targets = self._live_runs(key)
        rows = [
            (
                {
                    **outcome.row,
                    **self._own(rid, node),
                    "reused": int(rid != owner),
                    "cumulative_epochs": cumulative,
                },
                epochs,
            )
            for rid in targets
        ]
        self.store.commit_step(key, outcome.state, rows, owner=self.claims.owner)
        self.tracking.steps([StepRecord(row["run_id"], row, epochs) for row, epochs in rows])
        self.cumulative[key] = cumulative
        self.outcome.computed += 1
        self.outcome.shared += sum(rid != owner for rid in targets)
        self.progress.step_done(outcome.row)
        self._landed(key, targets)

    def _stored_elsewhere(self, key: str) -> None:
        """Another process stored this step since we looked: take its rows (copying one for
        each of our runs it did not write) and go on below it."""
        sources = self.store.stored_steps([key])
        if key not in sources:  # what it stored does not check out: compute it here
            self.seen[key] = self.store.written_at("checkpoint").get(key)
            self._push(key)
            return
        source = sources[key]
        node = self.plan.nodes[key]
        written = {r["run_id"] for r in self.store.rows_of(key) if r["step"] == node.depth}
        lacking = [r for r in self._live_runs(key) if r not in written]
        if lacking:
            self._copy(key, source, lacking)
        self.cumulative[key] = source["cumulative_epochs"]
        self.outcome.by_others += 1
        self._steps_done += 1
        self._landed(key, self._live_runs(key))

    def _landed(self, key: str, targets: list[str]) -> None:
        self.stored.add(key)
        for rid in targets:
            self.remaining[rid] -= 1
            if self.remaining[rid] == 0:
                self._finish(rid, "done")
        for child in self.plan.nodes[key].children:
            if child in self.needed:
                self._push(child)

    def _estimate(self) -> tuple[float, float] | None:
        """Seconds the steps left will take (a few timed batches per model and data), for the
        live display's ETA; None for a quiet one, or when timing fails (the sweep goes on)."""
        if not (self.progress.wants_estimate and self.needed):
            return None
        try:
            est = estimate_plan(self.plan, self.needed, self.workspace.data)
        except Exception:
            return None
        return est.side_by_side(getattr(self.executor, "slots", 1), with_pretraining=False)

    def _start_tracking(self) -> None:
        """Trackers get every run of the plan (finished ones too: what a destination lacks is
        caught up on), after the stored rows were copied."""
        stored = {r["run_id"]: r for r in self.store.runs()}
        runs = [
            RunInfo(
                r.run_id,
                r.title,
                r.cfg.model_dump(mode="json"),
                stored[r.run_id],
                "running" if r.run_id in self.active else stored[r.run_id]["status"],
            )
            for r in self.plan.runs
            if r.run_id in stored
        ]
        key = digest(sorted(r.run_id for r in self.plan.runs))
        session = Session(str(self.store.root.resolve()), self.sweep, key)
        self.tracking.start(session, runs, self.store)

    def _warn(self, messages: list[str]) -> None:
        for text in messages:
            self.progress.warning(text)

    def _update(self) -> None:
        self._warn(self.tracking.warnings())
        current = [job.label for job in self.executor.in_flight()]
        self.progress.sweep_update(
            self._steps_done, len(self.outcome.done), len(self.outcome.failed), current
        )

    def _stop(self, status: str, error: str) -> int:
        """Mark the runs this invocation started and did not finish (best effort: the disk
        may refuse this too); returns how many."""
        left = [r for r in self._started if r not in self.outcome.done and r not in self.failed]
        for rid in left:
            with suppress(PrunebenchError):
                self.store.finish_run(rid, status, error)
        return len(left)

    def _retry_waiting(self) -> None:
        for key in self._waiting:
            self._push(key)
        self._waiting.clear()

    def _loop(self) -> None:
        self.copy_stored()
        self._start_tracking()
        for run in self.plan.runs:
            rid = run.run_id
            if rid in self.active and rid not in self.failed and self.remaining[rid] == 0:
                self._finish(rid, "done")
        self._ready_at_start()
        self.progress.runs_planned({r.run_id: (r.title, len(r.steps)) for r in self.plan.runs})
        self.progress.sweep_started(len(self.needed), len(self.active), self._estimate())
        while self._heap or self.executor.busy or self._waiting:
            while self._heap and self.executor.has_room():
                _, _, key = heapq.heappop(self._heap)
                if key in self.stored or not self._live_runs(key):
                    continue
                job = self._next(key)
                if job is not None:
                    self.executor.submit(job, self.workspace)
            self._update()
            if not self.executor.busy:
                if self._waiting and not self._heap:  # nothing to do but wait for others
                    time.sleep(self.claims.poll)
                    self.outcome.waited += self.claims.poll
                    self._retry_waiting()
                continue
            for job, result in self.executor.wait():
                self._steps_done += 1
                if result.error is not None:
                    self.claims.release("checkpoint", job.key)
                    self._fail(job.key, result.error, result.exception)
                else:
                    self._write(job.key, result)
                self._update()
            self._retry_waiting()

    def run(self) -> SweepOutcome:
        started = time.perf_counter()
        for run in self.plan.runs:  # bad input fails here, before anything is written
            if run.run_id in self.active:
                self.workspace.check(run.cfg)
        check(self.log_specs, self.store.log_dir)
        self.executor.start()  # a Ray address that does not answer, too
        self.tracking = make_tracking(self.log_specs, self.store.log_dir)
        interrupted = True
        try:
            self.start_runs()
            with self.store.held_open():
                self._loop()
            interrupted = False
        except KeyboardInterrupt:
            self._stop("interrupted", "interrupted; run the same command again to resume")
            raise
        except StorageError as exc:
            left = self._stop("failed", str(exc))
            raise StorageError(
                f"{exc}; {left} unfinished runs marked failed; nothing was half-written: free "
                "space and run the same command again to resume"
            ) from None
        finally:
            self.executor.close()
            self.claims.close()
            self.progress.sweep_finished()
            # Ctrl-C or a crash: do not hold the user for a slow server (a rerun catches up)
            self._warn(self.tracking.close(5.0 if interrupted else None))
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome


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
    stale_after: float = CLAIM_STALE_S,
) -> SweepOutcome:
    """Compute every run of `plan` into `store` (resuming, reusing stored steps, sharing the
    work with other processes on the same directory); log to the `log` destinations
    (mlflow[=URI], tensorboard[=DIR]) and those in the runs' configs, with one parent run named
    `sweep` when given."""
    executor = executor or LocalExecutor()
    driver = Driver(plan, store, executor, progress or Progress(), log, sweep, stale_after)
    return driver.run()


@dataclass
class RunResult:
    run_id: str
    status: str
    rows: list[dict[str, Any]]
    computed: int = 0  # steps computed now
    reused: int = 0  # rows copied from steps stored earlier (by this or another run)
    resumed_from: int = 0  # rows the run had before this call
    already_done: bool = False


def _sound(store: Store, plan: Plan) -> bool:
    """Whether a finished run's rows and checkpoints still match their digests / hashes."""
    damaged: dict[str, str] = {}
    store.stored_steps(plan.nodes, damaged)
    ids = {r.run_id for r in plan.runs}
    return not damaged and not any(r in ids for r, _ in store.row_check().bad)


def run(
    cfg: RunConfig,
    store: Store,
    progress: Progress | None = None,
    executor: Executor | None = None,
    log: Sequence[str] = (),
) -> RunResult:
    """Run (or resume, or skip if finished) one pruning regime; every step lands in `store`.

    A plan of one run through the same driver as a sweep, so both follow the same rules:
    resume from stored steps, reuse of identical steps stored by other runs, failure records.
    A failed step re-raises its exception here, after the run is recorded as failed. With
    `log` (or the config's `log:`), a finished run is still logged where it is missing.
    """
    rid = run_id(cfg)
    plan = build_plan([cfg])
    existing = store.run(rid)
    done = bool(existing and existing["status"] == "done")
    if done and not (log or cfg.log) and _sound(store, plan):
        return RunResult(rid, "done", store.steps(rid), already_done=True)
    before = len(store.steps(rid))
    outcome = execute_plan(plan, store, executor or LocalExecutor(), progress, log)
    if rid in outcome.failed:
        raise outcome.exceptions.get(rid) or PrunebenchError(outcome.failed[rid])
    rows = store.steps(rid)
    again = done and not (outcome.computed or outcome.copied)  # finished, sound, untouched
    return RunResult(rid, "done", rows, outcome.computed, outcome.copied, before, again)
