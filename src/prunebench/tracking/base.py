"""What a tracker receives and how prunebench's rows become metrics, params and tags.

Metric names are the SQLite column names: `epoch/<column>` (train_loss, val_loss, val_metric,
lr) with step = the cumulative fine-tuning epoch of the run, `step/<column>` (target,
achieved_sparsity, test_top1, ..., latency_ms, reused) with step = the pruning step, and
`dense/<metric>` for the dense model the run starts from. The evaluations of `eval:` are
`eval/<name>` (e.g. `eval/story/ppl`) with step = the pruning step, and `dense_eval/<name>` at
step 0 for the dense model. A tracker records which pruning steps, and which evaluations (step,
setting), it holds in the destination itself, so a resumed or repeated sweep never logs one
twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

EPOCH_COLUMNS = ("train_loss", "val_loss", "val_metric", "lr")
STEP_COLUMNS = (
    "achieved_sparsity",
    "increment",
    "test_top1",
    "test_top5",
    "test_ppl",
    "test_loss",
    "pruned_test_top1",
    "pruned_test_top5",
    "pruned_test_ppl",
    "pruned_test_loss",
    "best_val_loss",
    "best_val_metric",
    "params_total",
    "params_nonzero",
    "compression_ratio",
    "macs_dense",
    "macs_pruned",
    "speedup",
    "latency_ms",
    "dense_latency_ms",
    "epochs",
    "cumulative_epochs",
    "seconds",
    "reused",
    "target",  # last: the TensorBoard marker of a whole step
)
DENSE_COLUMNS = ("dense_test_top1", "dense_test_top5", "dense_test_ppl", "dense_test_loss")
TAG_FIELDS = ("regime", "criterion", "structure", "scope", "seed", "target", "model", "dataset")
MARKER = "step/target"


@dataclass
class RunInfo:
    """One prunebench run as trackers see it."""

    run_id: str
    label: str  # e.g. "geometric q=0.2 @0.9 seed 0"
    config: dict[str, Any]  # the resolved config (JSON)
    fields: dict[str, Any]  # its row of the runs table
    status: str = "running"  # done | failed: finished before this invocation

    @property
    def params(self) -> dict[str, str]:
        return flatten(self.config)

    @property
    def tags(self) -> dict[str, str]:
        tags = {k: str(self.fields[k]) for k in TAG_FIELDS if self.fields.get(k) is not None}
        return {**tags, "prunebench.run_id": self.run_id}

    @property
    def dense(self) -> dict[str, float]:
        return {
            "dense/" + k.removeprefix("dense_"): float(self.fields[k])
            for k in DENSE_COLUMNS
            if self.fields.get(k) is not None
        }


@dataclass
class StepRecord:
    """A pruning step of a run as stored: its row and its epoch rows."""

    run_id: str
    row: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def step(self) -> int:
        return int(self.row["step"])

    def step_metrics(self) -> dict[str, float]:
        return {
            f"step/{c}": float(self.row[c]) for c in STEP_COLUMNS if self.row.get(c) is not None
        }

    def epoch_metrics(self) -> list[tuple[int, dict[str, float]]]:
        """(cumulative fine-tuning epoch, metrics) per epoch of this step."""
        before = int(self.row.get("cumulative_epochs") or 0) - int(self.row.get("epochs") or 0)
        out = []
        for epoch in self.epochs:
            values = {
                f"epoch/{c}": float(epoch[c]) for c in EPOCH_COLUMNS if epoch.get(c) is not None
            }
            out.append((before + int(epoch["epoch"]), values))
        return out


@dataclass
class EvalRecord:
    """One stored evaluation of a run's step under one setting (all its metric names, which
    land in one transaction); step 0 is the dense model the run starts from."""

    run_id: str
    step: int
    setting: str  # the digest of the evaluation's setting (evaluation/suite.py)
    values: dict[str, float]  # metric name -> value, e.g. {"story/ppl": 31.4}

    @property
    def held(self) -> tuple[int, str]:
        """What a destination records once this evaluation is logged there."""
        return (self.step, self.setting)

    def metrics(self) -> dict[str, float]:
        prefix = "dense_eval/" if self.step == 0 else "eval/"
        return {prefix + name: float(value) for name, value in self.values.items()}


@dataclass(frozen=True)
class Session:
    """One invocation of the driver: a sweep (with a parent run) or a single run."""

    results: str  # absolute path of the results directory
    sweep: str | None = None  # the sweep's name; None for `prunebench run`
    key: str = ""  # identifies the sweep (its run ids), so a resumed sweep finds its parent


class StoredRows(Protocol):
    """What trackers read to catch up on steps stored earlier (the driver passes its Store)."""

    def steps(self, run_id: str) -> list[dict[str, Any]]: ...

    def epochs(self, run_id: str, step: int) -> list[dict[str, Any]]: ...


class Tracker(Protocol):
    """A destination. Called from the tracking thread only, never from the hot path; any
    exception stops this tracker (one warning) and nothing else."""

    name: str

    def open(self, session: Session) -> None: ...

    def start_run(self, run: RunInfo) -> set[int]:
        """Create or find the run there; return the pruning steps it already holds."""
        ...

    def log_step(self, run: RunInfo, record: StepRecord, logged: set[int]) -> None:
        """Log one whole step; `logged` (steps held, this one included) may be recorded."""
        ...

    def held_evaluations(self, run: RunInfo) -> set[tuple[int, str]]:
        """The (step, setting) evaluations the destination holds for a started run."""
        ...

    def log_evaluation(self, run: RunInfo, record: EvalRecord, held: set[tuple[int, str]]) -> None:
        """Log one evaluation (possibly after `finish_run`); `held` (this one included) may be
        recorded."""
        ...

    def finish_run(self, run: RunInfo, status: str, error: str | None) -> None: ...

    def close(self, failed: bool) -> None: ...


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"prune.criterion": "magnitude", ...}; lists as JSON, None as 'None'."""
    out: dict[str, str] = {}
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    value = json.dumps(obj, sort_keys=True) if isinstance(obj, list | dict) else str(obj)
    return {prefix.rstrip("."): value}
