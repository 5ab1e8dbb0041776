"""What a results directory already holds for a plan, read once when an invocation starts.

Steps already stored (row + checkpoint, both checked against their digest / sha256) are not
recomputed, rows a run lacks are copied from them, and the rest is computed. A checkpoint that
no longer matches its sha256 is computed again (one warning line); a row that fails its digest
is rewritten. `Stock` is that inventory, kept up to date by the driver as steps land.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prunebench.engine.migrate import upgrade
from prunebench.engine.plan import Plan
from prunebench.errors import PrunebenchError
from prunebench.progress import Progress
from prunebench.store.database import Store


def prepare_store(store: Store, progress: Progress) -> dict[str, str]:
    """Bring an older results directory up to date (keys, file hashes) before it is read;
    returns the checkpoints of an earlier version that do not read (key -> reason)."""
    upgrade(store)
    adopted, damaged = store.adopt_files()
    if adopted:
        progress.message(f"recorded the sha256 of {adopted} files written by an earlier version")
    return damaged


@dataclass
class Stock:
    """What is stored for a plan and what is left to do in this invocation."""

    sources: dict[str, dict[str, Any]]  # step key -> a stored row of that step
    have: dict[str, dict[int, str]]  # run id -> step index -> key of the run's stored row
    stored: set[str]  # step keys whose checkpoint is stored and sound
    cumulative: dict[str, int]  # step key -> fine-tuning epochs from the dense model on
    seen: dict[str, float]  # step key -> when its checkpoint record was written (see leases)
    active: set[str]  # runs this invocation works on
    needed: set[str]  # step keys to compute
    remaining: dict[str, int]  # active run id -> its steps not stored yet
    failed: dict[str, str] = field(default_factory=dict)  # run id -> error


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


def take_stock(plan: Plan, store: Store, progress: Progress, damaged: dict[str, str]) -> Stock:
    """The inventory of `store` for `plan` (`damaged`: from `prepare_store`); refuses stored
    rows whose step keys differ from the plan's before anything is computed."""
    # stored steps before rows: a step another process stores in between is then taken from it
    # (the driver's `_stored_elsewhere`) rather than copied over its rows
    sources = store.stored_steps(plan.nodes, damaged)
    for key in damaged:  # an earlier version's checkpoint that does not read, too
        sources.pop(key, None)
    have = store.run_steps()
    ids = {r.run_id for r in plan.runs}
    bad_rows = [(r, s) for r, s in store.row_check().bad if r in ids]
    for rid, step in bad_rows:
        del have[rid][step]  # rewritten, like a missing row
    if bad_rows:
        shown = ", ".join(f"run {r} step {s}" for r, s in bad_rows[:3])
        more = f" and {len(bad_rows) - 3} more" if len(bad_rows) > 3 else ""
        progress.warning(
            f"{len(bad_rows)} step rows do not match their digest ({shown}{more}): "
            "changed after they were written; rewriting them"
        )
    check_stored(plan, have)
    status = {r["run_id"]: r["status"] for r in store.runs()}
    damaged = {k: v for k, v in damaged.items() if k in plan.nodes}
    for reason in damaged.values():
        progress.warning(f"{reason}; computing that step again")
    stored = set(sources)
    active = {
        r.run_id
        for r in plan.runs
        if status.get(r.run_id) != "done"
        or any(s.index not in have.get(r.run_id, {}) for s in r.steps)
        or any(s.key in damaged for s in r.steps)
    }
    return Stock(
        sources=sources,
        have=have,
        stored=stored,
        cumulative={k: sources[k]["cumulative_epochs"] for k in stored},
        seen=store.written_at("checkpoint"),
        active=active,
        needed={
            k
            for k, node in plan.nodes.items()
            if k not in stored and any(r in active for r in node.runs)
        },
        remaining={rid: sum(s.key not in stored for s in plan.run(rid).steps) for rid in active},
    )
