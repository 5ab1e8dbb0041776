"""The single-run API (`prunebench.run`, `prunebench run`): one run as a plan of one run through
the same driver as a sweep, so both follow the same rules (resume from stored steps, reuse of
identical steps stored by other runs, failure records)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prunebench.config.identity import run_id
from prunebench.config.schema import RunConfig
from prunebench.engine.driver import execute_plan
from prunebench.engine.executors.base import Executor
from prunebench.engine.executors.local import LocalExecutor
from prunebench.engine.plan import Plan, build_plan
from prunebench.errors import PrunebenchError
from prunebench.progress import Progress
from prunebench.store.database import Store


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
    rows = store.row_check()
    return not damaged and not any(r in ids for r in {*rows.bad_runs, *(r for r, _ in rows.bad)})


def run(
    cfg: RunConfig,
    store: Store,
    progress: Progress | None = None,
    executor: Executor | None = None,
    log: Sequence[str] = (),
) -> RunResult:
    """Run (or resume, or skip if finished) one pruning regime; every step lands in `store`.

    A failed step re-raises its exception here, after the run is recorded as failed. With
    `log` (or the config's `log:`), a finished run is still logged where it is missing.
    """
    rid = run_id(cfg)
    plan = build_plan([cfg])
    existing = store.run(rid)
    done = bool(existing and existing["status"] == "done")
    if done and not (log or cfg.log or cfg.eval) and _sound(store, plan):
        return RunResult(rid, "done", store.steps(rid), already_done=True)
    before = len(store.steps(rid))
    summary = execute_plan(plan, store, executor or LocalExecutor(), progress, log)
    if rid in summary.failed:
        raise summary.exceptions.get(rid) or PrunebenchError(summary.failed[rid])
    rows = store.steps(rid)
    again = done and not (summary.computed or summary.copied)  # finished, sound, untouched
    return RunResult(rid, "done", rows, summary.computed, summary.copied, before, again)
