"""Planning the adaptive regime one step at a time (the rule itself: config/adaptive_rule.py).

An adaptive run's steps are not known up front: `plan.build_plan` plans its first cut, and the
driver asks `next_step` for the step after the run's last one as soon as that step's row is
stored (computed now, by another run, by another process, or in an earlier invocation). The
answer depends only on the run's config and the rows of its own steps (validation metrics right
after pruning and after fine-tuning, epochs), which are the same whichever executor computed
them and whether the run resumed, so a run takes the same steps every time. A step's key is
made exactly as a fixed schedule's (parent, target, fine-tuning settings), so adaptive runs share
steps with each other and with fixed regimes whose steps coincide; a retried step also names
the rejected step it replaces, so it is shared only by runs with that same history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prunebench.config.adaptive_rule import Choice, Measured, next_choice
from prunebench.config.fit_settings import epoch_bounds
from prunebench.engine.plan import Plan, PlannedRun, StepPlan, adaptive_rule, is_adaptive, make_step
from prunebench.engine.resume import Stock
from prunebench.engine.run_rows import RunBook
from prunebench.engine.workspace import Workspace
from prunebench.store.database import Store


def measured(
    step: StepPlan, rows: Mapping[str, Mapping[str, Any]], dense_val: float, higher: bool
) -> Measured:
    """What `step` measured, from stored rows by step key (`dense_val`: the dense model's
    validation metric, where a first cut starts)."""
    row = rows[step.key]
    before = dense_val if step.index == 1 else rows[step.parent_key]["best_val_metric"]
    return Measured(
        before=before,
        pruned=row.get("pruned_val_metric"),
        after=row["best_val_metric"],
        epochs=row["epochs"],
        epoch_range=epoch_bounds(step.settings),
        higher_is_better=higher,
    )


def next_step(
    run: PlannedRun, rows: Mapping[str, Mapping[str, Any]], dense_val: float, higher: bool
) -> StepPlan | None:
    """The step after `run`'s last one (the rows of all its steps must be in `rows`); None:
    the run is at its target."""
    history: list[tuple[Choice, Measured | None]] = [
        (s.choice, measured(s, rows, dense_val, higher)) for s in run.steps
    ]
    choice = next_choice(*adaptive_rule(run.cfg), history)
    if choice is None:
        return None
    last = run.steps[-1]
    parent, rejected = last.key, None
    if choice.retries is not None:  # start over from the state the rejected step started from
        parent, rejected = run.steps[choice.retries].parent_key, run.steps[choice.retries].key
    increment = choice.target - choice.start
    return make_step(run.cfg, last.index + 1, choice.target, increment, parent, choice, rejected)


class AdaptivePlanner:
    """The driver's part that plans adaptive runs as their steps land."""

    def __init__(
        self, plan: Plan, store: Store, stock: Stock, book: RunBook, workspace: Workspace
    ) -> None:
        self.plan, self.store, self.stock, self.book = plan, store, stock, book
        self.workspace = workspace

    def resume(self) -> list[str]:
        """Active adaptive runs whose last planned step is stored: plan on through what is
        stored; returns the step keys to compute that are new to the plan."""
        new: list[str] = []
        for run in self.plan.runs:
            rid, last = run.run_id, run.steps[-1].key
            live = rid in self.stock.active and rid not in self.stock.failed
            if live and is_adaptive(run.cfg) and last in self.stock.stored:
                new += self.plan_next(last, [rid])
        return new

    def plan_next(self, key: str, targets: list[str]) -> list[str]:
        """Adaptive runs among `targets` whose last planned step `key` just landed: plan their
        next step from the rows stored, and on through next steps stored already (their rows
        copied). A new step is a child of its tree parent, so the driver pushes it when that
        lands; returns the keys new to the plan."""
        stock, new = self.stock, []
        for rid in targets:
            run = self.plan.run(rid)
            last = key
            while is_adaptive(run.cfg) and run.steps[-1].key == last:
                ctx = self.workspace.context(run.cfg)
                dense_val = ctx.dense.metrics["val_metric"]
                step = next_step(run, stock.sources, dense_val, ctx.task.higher_is_better)
                if step is None:  # at its target: done when `key` lands
                    break
                if step.key not in self.plan.nodes:
                    new.append(step.key)
                self.plan.add_step(rid, step)
                if step.key not in stock.stored and step.key not in stock.needed:
                    self._take_stored(step.key)
                if step.key not in stock.stored:
                    stock.remaining[rid] += 1
                    stock.needed.add(step.key)
                    break
                if stock.have.get(rid, {}).get(step.index) != step.key:
                    self.book.copy(step.key, stock.sources[step.key], [rid])
                last = step.key
        return new

    def _take_stored(self, key: str) -> None:
        """A step planned now that is stored already (by an earlier invocation, another run)."""
        found = self.store.stored_steps([key])
        if key in found:
            self.stock.sources[key] = found[key]
            self.stock.stored.add(key)
            self.stock.cumulative[key] = found[key]["cumulative_epochs"]
