"""The rows of the runs of one invocation: what a run's row holds, and `RunBook`, which writes
every step's row for EVERY run through it, copies rows a run lacks from steps stored earlier
(reused=1), and records how each run ends (done, failed with the error, interrupted).

A step is committed in one SQLite transaction with its checkpoint, its sha256 and its rows; a
run is marked done when its last row lands. Trackers get a copy of each stored row, and of
each stored evaluation of the runs' steps (`track_evaluations`).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from prunebench.config.identity import SCHEMA_VERSION, base_id, digest, stored_dump
from prunebench.config.schema import RunConfig
from prunebench.engine.chance import chance_metric
from prunebench.engine.executors.base import StepResult
from prunebench.engine.plan import Node, Plan, is_adaptive
from prunebench.engine.resume import Stock
from prunebench.engine.step import RunContext
from prunebench.engine.workspace import Workspace
from prunebench.errors import PrunebenchError
from prunebench.progress import Progress
from prunebench.store.database import Store
from prunebench.store.metrics import dense_key
from prunebench.store.schema import RUN_COLUMNS, dumps
from prunebench.tracking.base import EvalRecord, RunInfo, Session, StepRecord
from prunebench.tracking.hub import Tracking


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
        "config_json": dumps(stored_dump(cfg)),
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
        "chance_metric": chance_metric(ctx.data, ctx.task.name),
        "device": str(ctx.device),
        **dense,
    }


def epoch_records(epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A step's epoch rows without the fields that name their run and step."""
    return [{k: v for k, v in e.items() if k not in ("run_id", "step")} for e in epochs]


@dataclass
class SweepSummary:
    """What one invocation did: the counts `sweep` prints, and the runs that ended."""

    runs: int
    already_done: int  # finished before this invocation
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # run id -> error
    exceptions: dict[str, Exception] = field(default_factory=dict)  # run id -> (local) error
    computed: int = 0  # steps computed now
    copied: int = 0  # rows copied from steps stored earlier
    by_others: int = 0  # steps another process computed while this one ran
    waited: float = 0.0  # seconds idle, waiting for steps another process had leased
    shared: int = 0  # rows of other runs written with a step computed now (reused=1 too)
    seconds: float = 0.0


class RunBook:
    """The rows and run states this invocation writes (the driver schedules, this records)."""

    def __init__(self, plan: Plan, store: Store, stock: Stock, progress: Progress) -> None:
        self.plan, self.store, self.stock, self.progress = plan, store, stock, progress
        self.summary = SweepSummary(len(plan.runs), len(plan.runs) - len(stock.active))
        self.tracking = Tracking([])
        self._started: set[str] = set()  # runs this invocation marked as running

    def live_runs(self, key: str) -> list[str]:
        """The runs through step `key` this invocation still works on."""
        stock = self.stock
        return [r for r in self.plan.nodes[key].runs if r in stock.active and r not in stock.failed]

    def start_runs(self, workspace: Workspace) -> None:
        """Pretrain what is missing, then mark every active run as running (resume included).
        A dense model whose computing fails (pretraining diverged, out of memory, ...) fails
        the runs that start from it, recorded like a failed step; the others go on. A user
        error stops the invocation as before (one line, exit 2)."""
        dense_failed: dict[str, tuple[str, Exception]] = {}
        for run in self.plan.runs:
            if run.run_id not in self.stock.active:
                continue
            bid = base_id(run.cfg)
            if bid not in dense_failed:
                try:
                    ctx = workspace.context(run.cfg)
                except PrunebenchError:  # bad input (weights that do not fit, ...), a full disk
                    raise
                except Exception as exc:
                    dense_failed[bid] = (f"pretraining: {type(exc).__name__}: {exc}", exc)
            if bid in dense_failed:
                message, exc = dense_failed[bid]
                self.store.start_run(run.run_id, config_fields(run.cfg, len(run.steps)))
                self.stock.failed[run.run_id] = message
                self.summary.exceptions[run.run_id] = exc
                self.finish(run.run_id, "failed", message)
                continue
            self.store.start_run(run.run_id, run_fields(ctx, len(run.steps)))
            self._started.add(run.run_id)

    def copy_stored(self) -> None:
        """Rows that active runs lack for steps stored earlier (by any run), one transaction
        per step."""
        stock = self.stock
        for key in self.plan.nodes:
            if key not in stock.stored:
                continue
            node = self.plan.nodes[key]
            targets = [r for r in self.live_runs(key) if node.depth not in stock.have.get(r, {})]
            if targets:
                self.copy(key, stock.sources[key], targets)

    def finish_complete(self) -> None:
        """Mark done the active runs whose every step is stored already."""
        for run in self.plan.runs:
            rid = run.run_id
            stock = self.stock
            if rid in stock.active and rid not in stock.failed and stock.remaining[rid] == 0:
                self.finish(rid, "done")

    def copy(self, key: str, source: dict[str, Any], targets: list[str]) -> None:
        node = self.plan.nodes[key]
        epochs = epoch_records(self.store.epochs(source["run_id"], source["step"]))
        rows = [
            ({**source, **self._own(r, node), "reused": 1, "created_at": None}, epochs)
            for r in targets
        ]
        self.store.write_steps(rows)
        self.summary.copied += len(rows)

    def _own(self, rid: str, node: Node) -> dict[str, Any]:
        """The fields of a shared step's row that come from the run itself: its id, its own
        schedule's target and increment (equal to the key's up to the last bits), and for an
        adaptive run why its rule chose this step (None for the others)."""
        step = self.plan.run(rid).steps[node.depth - 1]
        choice = step.choice
        return {
            "run_id": rid,
            "target": step.target,
            "increment": step.increment,
            "rule": choice.rule if choice else None,
            "rule_rate": choice.rate if choice else None,
            "rule_recovery": choice.recovery if choice else None,
        }

    def write(self, key: str, result: StepResult, lease_owner: str) -> list[str]:
        """Commit a computed step: its checkpoint and one row for every live run through it
        (the others' rows reused=1); returns those runs."""
        node = self.plan.nodes[key]
        parent_cum = 0 if node.depth == 1 else self.stock.cumulative[node.step.budget_parent]
        cumulative = parent_cum + result.row["epochs"]
        owner = result.row["run_id"]
        epochs = epoch_records(result.epochs)
        targets = self.live_runs(key)
        rows = [
            (
                {
                    **result.row,
                    **self._own(rid, node),
                    "reused": int(rid != owner),
                    "cumulative_epochs": cumulative,
                },
                epochs,
            )
            for rid in targets
        ]
        self.store.commit_step(key, result.state, rows, owner=lease_owner)
        self.stock.sources[key] = rows[0][0] if rows else result.row
        self.tracking.steps([StepRecord(row["run_id"], row, epochs) for row, epochs in rows])
        self.stock.cumulative[key] = cumulative
        self.summary.computed += 1
        self.summary.shared += sum(rid != owner for rid in targets)
        self.progress.step_done(result.row)
        return targets

    def take_stored(self, key: str, source: dict[str, Any]) -> None:
        """Another process stored this step: copy a row for each of our runs it did not write."""
        node = self.plan.nodes[key]
        written = {r["run_id"] for r in self.store.rows_of(key) if r["step"] == node.depth}
        lacking = [r for r in self.live_runs(key) if r not in written]
        if lacking:
            self.copy(key, source, lacking)
        self.stock.cumulative[key] = source["cumulative_epochs"]
        self.stock.sources[key] = source
        self.summary.by_others += 1

    def landed(self, key: str, targets: list[str]) -> None:
        """Step `key` is stored for `targets`: a run whose last step it was is done."""
        self.stock.stored.add(key)
        for rid in targets:
            self.stock.remaining[rid] -= 1
            if self.stock.remaining[rid] == 0:
                self.finish(rid, "done")

    def finish(self, rid: str, status: str, error: str | None = None) -> None:
        run = self.plan.run(rid)
        if status == "done" and is_adaptive(run.cfg):  # the steps its rule chose
            targets = [s.target for s in run.steps]
            self.store.update_run(rid, {"n_steps": len(targets), "schedule_json": dumps(targets)})
        self.store.finish_run(rid, status, error)
        self.tracking.run_finished(rid, status, error)
        title = self.plan.run(rid).title
        self.progress.message(f"{title}: {status}" + (f" ({error})" if error else ""))
        if status == "done":
            if rid not in self.summary.done:  # again after a step below it was recomputed
                self.summary.done.append(rid)
        else:
            self.summary.failed[rid] = error or ""

    def fail(self, key: str, error: str, exception: Exception | None = None) -> None:
        """Step `key` failed: so did every live run through it."""
        node = self.plan.nodes[key]
        message = f"step {node.depth} (target {node.step.target:.4f}): {error}"
        for rid in self.live_runs(key):
            self.stock.failed[rid] = message
            if exception is not None:
                self.summary.exceptions[rid] = exception
            self.finish(rid, "failed", message)

    def stop(self, status: str, error: str) -> int:
        """Mark the runs this invocation started and did not finish (best effort: the disk
        may refuse this too); returns how many."""
        summary, failed = self.summary, self.stock.failed
        left = [r for r in self._started if r not in summary.done and r not in failed]
        for rid in left:
            with suppress(PrunebenchError):
                self.store.finish_run(rid, status, error)
        return len(left)

    def start_tracking(self, sweep: str | None) -> None:
        """Trackers get every run of the plan (finished ones too: what a destination lacks is
        caught up on), after the stored rows were copied."""
        stored = {r["run_id"]: r for r in self.store.runs()}
        runs = [
            RunInfo(
                r.run_id,
                r.title,
                stored_dump(r.cfg),
                stored[r.run_id],
                "running" if r.run_id in self.stock.active else stored[r.run_id]["status"],
            )
            for r in self.plan.runs
            if r.run_id in stored
        ]
        key = digest(sorted(r.run_id for r in self.plan.runs))
        session = Session(str(self.store.root.resolve()), sweep, key)
        self.tracking.start(session, runs, self.store)

    def track_evaluations(self) -> None:
        """Trackers get every evaluation stored for the plan's runs' steps and dense models
        (computed now or earlier; each destination logs those it lacks), grouped by step and
        setting, oldest first: the values `results` shows as eval.NAME."""
        if not self.tracking.trackers:
            return
        planned = {r.run_id for r in self.plan.runs}
        steps: dict[str, dict[str, int]] = {}  # run id -> {step key: pruning step}
        for row in self.store.runs():
            if row["run_id"] not in planned:
                continue
            own = {s["step_key"]: int(s["step"]) for s in self.store.steps(row["run_id"])}
            if row.get("base_id"):
                own[dense_key(row["base_id"])] = 0
            steps[row["run_id"]] = own
        wanted = {key for own in steps.values() for key in own}
        grouped: dict[tuple[str, str], dict[str, float]] = {}
        for m in self.store.step_metrics(wanted):
            grouped.setdefault((m["step_key"], m["setting"]), {})[m["name"]] = m["value"]
        records = [
            EvalRecord(rid, own[key], setting, values)
            for rid, own in steps.items()
            for (key, setting), values in grouped.items()
            if key in own
        ]
        self.tracking.evaluations(records)
