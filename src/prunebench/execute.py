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
from dataclasses import dataclass, field
from typing import Any, Protocol

from prunebench.config import RunConfig, base_id, canonical_json, run_id
from prunebench.data import DATASETS, DataBundle
from prunebench.devices import resolve_device
from prunebench.errors import PrunebenchError
from prunebench.executors import LocalExecutor, NodeJob, NodeOutcome
from prunebench.models import MODELS, build_model
from prunebench.plan import Node, Plan, build_plan
from prunebench.pretrain import Dense
from prunebench.progress import Progress
from prunebench.pruning import make_pruner
from prunebench.runner import RunContext, run_fields
from prunebench.store import Store


class Executor(Protocol):
    name: str

    def start(self) -> None: ...

    def has_room(self) -> bool: ...

    @property
    def busy(self) -> bool: ...

    def in_flight(self) -> list[NodeJob]: ...

    def submit(self, job: NodeJob, contexts: Contexts) -> None: ...

    def wait(self) -> list[tuple[NodeJob, NodeOutcome]]: ...

    def close(self) -> None: ...


def data_identity(cfg: RunConfig) -> str:
    return canonical_json(cfg.data.model_dump(mode="json", exclude={"num_workers"}))


def dense_from_payload(cfg: RunConfig, payload: dict[str, Any], data: DataBundle) -> Dense:
    """The dense model rebuilt from `executors.dense_payload` (on a worker)."""
    model = build_model(cfg.model, data.info)
    model.load_state_dict(payload["state"])
    model = model.to(resolve_device(cfg.device))
    return Dense(model, payload["metrics"], payload["base_id"], reused=True)


class Contexts:
    """Run contexts that share one data bundle per dataset and one dense model per base id."""

    def __init__(self, store: Store, progress: Progress) -> None:
        self.store = store
        self.progress = progress
        self._data: dict[str, DataBundle] = {}
        self._dense: dict[str, Dense] = {}
        self._contexts: dict[str, RunContext] = {}
        self._checked: set[str] = set()

    def data(self, cfg: RunConfig) -> DataBundle:
        device = resolve_device(cfg.device)
        key = f"{data_identity(cfg)}|{device}"
        if key not in self._data:
            self._data[key] = DATASETS.get(cfg.data.name).build(cfg.data, device)
        return self._data[key]

    def check(self, cfg: RunConfig) -> None:
        """What needs the model (model options, prune.exclude names): before anything is
        trained or written, for every run of the sweep."""
        key = canonical_json([cfg.model.model_dump(mode="json"), cfg.prune.model_dump(mode="json")])
        if key not in self._checked:
            spec = MODELS.get(cfg.model.name)
            info = self.data(cfg).info
            make_pruner(cfg.prune, build_model(cfg.model, info), spec, info)
            self._checked.add(key)

    def get(self, cfg: RunConfig) -> RunContext:
        rid = run_id(cfg)
        if rid not in self._contexts:
            dense = self._dense.get(base_id(cfg))
            ctx = RunContext(cfg, self.store, self.progress, data=self.data(cfg), dense=dense)
            self._dense[ctx.dense.base_id] = ctx.dense
            self._contexts[rid] = ctx
        return self._contexts[rid]


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

    def __init__(self, plan: Plan, store: Store, executor: Executor, progress: Progress):
        self.plan, self.store, self.executor, self.progress = plan, store, executor, progress
        self.index = store.step_index()
        self.have = store.run_steps()
        check_stored(plan, self.have)
        status = {r["run_id"]: r["status"] for r in store.runs()}
        self.stored = {
            k for k in plan.nodes if k in self.index and store.checkpoint_path(k).exists()
        }
        self.cumulative = {k: self.index[k]["cumulative_epochs"] for k in self.stored}
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
        self.contexts = Contexts(store, progress)
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
            ctx = self.contexts.get(run.cfg)
            model, pruner = ctx.dense_state()
            self.store.start_run(run.run_id, run_fields(ctx, pruner, model, len(run.steps)))

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
        label = owner.label if len(node.runs) == 1 else f"{owner.label} (+{len(node.runs) - 1})"
        return NodeJob(key, node.step, owner.run_id, owner.cfg, label, len(owner.steps), parent)

    def _finish(self, rid: str, status: str, error: str | None = None) -> None:
        self.store.finish_run(rid, status, error)
        run = self.plan.run(rid)
        where = f"{run.label} @{run.cfg.regime.final_target:g} seed {run.cfg.seed}"
        self.progress.message(f"{where}: {status}" + (f" ({error})" if error else ""))
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

    def _update(self) -> None:
        current = [job.label for job in self.executor.in_flight()]
        self.progress.sweep_update(
            self._steps_done, len(self.outcome.done), len(self.outcome.failed), current
        )

    def run(self) -> SweepOutcome:
        started = time.perf_counter()
        for run in self.plan.runs:  # bad input fails here, before anything is written
            if run.run_id in self.active:
                self.contexts.check(run.cfg)
        self.executor.start()  # a Ray address that does not answer, too
        try:
            self.start_runs()
            self.copy_stored()
            for run in self.plan.runs:
                if run.run_id in self.active and self.remaining[run.run_id] == 0:
                    self._finish(run.run_id, "done")
            self._ready_at_start()
            self.progress.sweep_started(len(self.needed), len(self.active))
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
                    self.executor.submit(job, self.contexts)
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
        finally:
            self.executor.close()
            self.progress.sweep_finished()
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome


def execute_plan(
    plan: Plan,
    store: Store,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> SweepOutcome:
    """Compute every run of `plan` into `store` (resuming, reusing stored steps)."""
    return Driver(plan, store, executor or LocalExecutor(), progress or Progress()).run()


@dataclass
class RunResult:
    run_id: str
    status: str
    rows: list[dict[str, Any]]
    computed: int = 0  # steps computed now
    reused: int = 0  # rows copied from steps stored earlier (by this or another run)
    resumed_from: int = 0  # rows the run had before this call
    already_done: bool = False


def run(cfg: RunConfig, store: Store, progress: Progress | None = None) -> RunResult:
    """Run (or resume, or skip if finished) one pruning regime; every step lands in `store`.

    A plan of one run through the same driver as a sweep, so both follow the same rules:
    resume from stored steps, reuse of identical steps stored by other runs, failure records.
    A failed step re-raises its exception here, after the run is recorded as failed.
    """
    rid = run_id(cfg)
    existing = store.run(rid)
    if existing and existing["status"] == "done":
        return RunResult(rid, "done", store.steps(rid), already_done=True)
    before = len(store.steps(rid))
    outcome = execute_plan(build_plan([cfg]), store, LocalExecutor(), progress)
    if rid in outcome.failed:
        raise outcome.exceptions.get(rid) or PrunebenchError(outcome.failed[rid])
    rows = store.steps(rid)
    return RunResult(rid, "done", rows, outcome.computed, outcome.copied, before)
