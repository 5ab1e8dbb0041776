"""Running a plan: the driver picks ready steps, hands them to an executor, and writes results.

The driver is the ONLY writer of the results directory. For each computed step it writes the
checkpoint (atomic rename) and then, in one SQLite transaction, the step's row for EVERY run
through it; a run is marked done when its last row lands. So a sweep killed at any instant
leaves whole steps or nothing, and running the same command again picks up where it stopped:
steps already stored (row + checkpoint) are not recomputed, rows a run lacks are copied from
them (reused=1), and the rest is computed with the same per-step seeds as before.

A step that raises (NaN loss, out of memory, any exception) fails the runs through it, with the
error message; other steps go on. Failed runs are tried again by the next invocation.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from prunebench.checkpoints import load_weights
from prunebench.config import SCHEMA_VERSION, RunConfig, base_id, digest, run_id
from prunebench.data.base import DataBundle
from prunebench.errors import PrunebenchError
from prunebench.estimate import estimate as estimate_plan
from prunebench.executors import Executor, LocalExecutor, NodeJob, NodeOutcome
from prunebench.migrate import upgrade
from prunebench.models.build import build_model
from prunebench.plan import Node, Plan, build_plan
from prunebench.pretrain import Dense, train_dense
from prunebench.progress import Progress
from prunebench.runner import RunContext
from prunebench.store import RUN_COLUMNS, Store, dumps
from prunebench.tasks import Task
from prunebench.tracking.base import RunInfo, Session, StepRecord
from prunebench.tracking.hub import Tracking, check, make_tracking
from prunebench.tracking.spec import LogSpec, parse_log
from prunebench.workspace import Workspace


def stored_dense(store: Store, progress: Progress | None = None):
    """The driver's source of dense models: the one stored under the config's base id, else
    trained now and stored (the driver is the only writer of the results directory)."""

    def source(cfg: RunConfig, data: DataBundle, task: Task, device: torch.device) -> Dense:
        model = build_model(cfg.model, data.info)
        bid = base_id(cfg)
        stored = store.load_dense(bid)
        if stored is not None:
            tensors, meta = stored
            load_weights(model, tensors, str(store.dense_path(bid)))
            return Dense(model.to(device), meta["metrics"], bid, reused=True)
        dense, history = train_dense(cfg, data, task, device, progress)
        meta = {
            "base_id": bid,
            "metrics": dense.metrics,
            "history": history,
            "config": cfg.model_dump(mode="json"),
        }
        store.save_dense(bid, dense.model.state_dict(), meta)
        return dense

    return source


def dense_model(cfg: RunConfig, store: Store, progress: Progress | None = None) -> Dense:
    """The dense model of `cfg` (`prunebench pretrain`): reused from `store` or trained now,
    after the same model checks as a run."""
    workspace = Workspace(stored_dense(store, progress), progress)
    workspace.check(cfg)
    return workspace.dense(cfg)


def run_fields(ctx: RunContext, n_steps: int) -> dict[str, Any]:
    """The run's row: what it is (config, regime, model, ...) and its dense model's figures."""
    cfg = ctx.cfg
    dense = {f"dense_{k}": v for k, v in ctx.dense.metrics.items() if f"dense_{k}" in RUN_COLUMNS}
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
        "task": ctx.task.name,
        "metric": ctx.task.metric,
        "base_id": ctx.dense.base_id,
        "n_steps": n_steps,
        "schedule_json": dumps(cfg.regime.schedule()),
        "config_json": dumps(cfg.model_dump(mode="json")),
        "prunable_json": dumps(ctx.describe_prunable()),
        "dense_params": ctx.dense_params,
        "device": str(ctx.device),
        "schema_version": SCHEMA_VERSION,
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
    ):
        self.plan, self.store, self.executor, self.progress = plan, store, executor, progress
        self.sweep = sweep
        self.log_specs = log_specs(plan, log)
        self.tracking = Tracking([])
        upgrade(store)
        self.have = store.run_steps()
        check_stored(plan, self.have)
        status = {r["run_id"]: r["status"] for r in store.runs()}
        stored = store.stored_steps()
        self.stored = {k for k in plan.nodes if k in stored}
        self.cumulative = {k: stored[k]["cumulative_epochs"] for k in self.stored}
        self.active = {
            r.run_id
            for r in plan.runs
            if status.get(r.run_id) != "done"
            or any(s.index not in self.have.get(r.run_id, {}) for s in r.steps)
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
        self.workspace = Workspace(stored_dense(store, progress), progress)
        self._order = {k: i for i, k in enumerate(plan.nodes)}
        self._critical = plan.critical_path()
        self._heap: list[tuple[int, int, str]] = []
        self._steps_done = 0

    # ---------------------------------------------------------------- set-up
    def start_runs(self) -> None:
        """Pretrain what is missing, then mark every active run as running (resume included)."""
        for run in self.plan.runs:
            if run.run_id not in self.active:
                continue
            ctx = self.workspace.context(run.cfg)
            self.store.start_run(run.run_id, run_fields(ctx, len(run.steps)))

    def copy_stored(self) -> None:
        """Rows that active runs lack for steps stored earlier (by any run), one transaction
        per step."""
        for key in self.plan.nodes:
            if key not in self.stored:
                continue
            node = self.plan.nodes[key]
            targets = [
                r for r in node.runs if r in self.active and node.depth not in self.have.get(r, {})
            ]
            if not targets:
                continue
            source = self.store.step_by_key(key)
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

    def _finish(self, rid: str, status: str, error: str | None = None) -> None:
        self.store.finish_run(rid, status, error)
        self.tracking.run_finished(rid, status, error)
        title = self.plan.run(rid).title
        self.progress.message(f"{title}: {status}" + (f" ({error})" if error else ""))
        if status == "done":
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
        tensors, meta = outcome.state
        self.store.save_checkpoint(key, tensors, meta)
        parent_cum = 0 if node.depth == 1 else self.cumulative[node.step.parent_key]
        self.cumulative[key] = parent_cum + outcome.row["epochs"]
        owner = outcome.row["run_id"]
        epochs = _epochs_only(outcome.epochs)
        targets = self._live_runs(key)
        rows = [
            (
                {
                    **outcome.row,
                    **self._own(rid, node),
                    "reused": int(rid != owner),
                    "cumulative_epochs": self.cumulative[key],
                },
                epochs,
            )
            for rid in targets
        ]
        self.store.write_steps(rows)
        self.tracking.steps([StepRecord(row["run_id"], row, epochs) for row, epochs in rows])
        self.stored.add(key)
        self.outcome.computed += 1
        self.outcome.shared += sum(rid != owner for rid in targets)
        self.progress.step_done(outcome.row)
        for rid in targets:
            self.remaining[rid] -= 1
            if self.remaining[rid] == 0:
                self._finish(rid, "done")
        for child in node.children:
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
            self.copy_stored()
            self._start_tracking()
            for run in self.plan.runs:
                if run.run_id in self.active and self.remaining[run.run_id] == 0:
                    self._finish(run.run_id, "done")
            self._ready_at_start()
            self.progress.runs_planned({r.run_id: (r.title, len(r.steps)) for r in self.plan.runs})
            self.progress.sweep_started(len(self.needed), len(self.active), self._estimate())
            while self._heap or self.executor.busy:
                while self._heap and self.executor.has_room():
                    _, _, key = heapq.heappop(self._heap)
                    if not self._live_runs(key):
                        continue
                    try:
                        job = self._job(key)
                    except Exception as exc:  # an unreadable parent checkpoint fails its runs
                        self._fail(key, f"{type(exc).__name__}: {exc}")
                        continue
                    self.executor.submit(job, self.workspace)
                self._update()
                if not self.executor.busy:
                    continue
                for job, result in self.executor.wait():
                    self._steps_done += 1
                    if result.error is not None:
                        self._fail(job.key, result.error, result.exception)
                    else:
                        self._write(job.key, result)
                    self._update()
            interrupted = False
        finally:
            self.executor.close()
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
) -> SweepOutcome:
    """Compute every run of `plan` into `store` (resuming, reusing stored steps); log to the
    `log` destinations (mlflow[=URI], tensorboard[=DIR]) and those in the runs' configs, with
    one parent run named `sweep` when given."""
    driver = Driver(plan, store, executor or LocalExecutor(), progress or Progress(), log, sweep)
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
    existing = store.run(rid)
    done = bool(existing and existing["status"] == "done")
    if done and not (log or cfg.log):
        return RunResult(rid, "done", store.steps(rid), already_done=True)
    before = len(store.steps(rid))
    outcome = execute_plan(build_plan([cfg]), store, executor or LocalExecutor(), progress, log)
    if rid in outcome.failed:
        raise outcome.exceptions.get(rid) or PrunebenchError(outcome.failed[rid])
    rows = store.steps(rid)
    return RunResult(rid, "done", rows, outcome.computed, outcome.copied, before, done)
