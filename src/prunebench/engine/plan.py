"""Shared-prefix planning: the runs of a sweep as a forest of pruning steps keyed by content.

Each step has a content key: the key of the state it starts from plus its cumulative target and
its effective fine-tuning settings; the first key covers the dense model, seed, data and pruning
config (`context_key`, `plan_steps`). A step's randomness is seeded from its key and its result
(weights, masks, row) is stored under it. Hence a killed run resumes from its last stored step
with the rows of an uninterrupted run, and a step that another run already computed with the
same key is reused, not recomputed. Runs whose first k
steps have equal keys pass through identical states, so the plan holds each key once: every
hybrid with the same p_k and seed shares its one-shot step (and that step's long fine-tune) with
the one-shot run to p_k; a geometric run to 0.99 shares all but its clipped last step with the
same geometric run to 0.96. Each node is computed once; every run still gets a row per step.

The plan is pure (no I/O): `build_plan` from validated configs, counts for `--dry-run`, a text
rendering of the tree, and the critical-path priority the executors schedule by.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from prunebench.config.fit_settings import FitSettings, epoch_bounds, finetune_settings
from prunebench.config.identity import (
    base_id,
    data_identity,
    digest,
    identity,
    run_id,
    without_added,
)
from prunebench.config.schedules import increments
from prunebench.config.schema import RunConfig

KEY_DECIMALS = 12  # cumulative targets equal to this many decimals share a step


@dataclass(frozen=True)
class StepPlan:
    index: int  # 1-based
    target: float  # this run's schedule value (what its rows report)
    increment: float
    key: str
    parent_key: str
    settings: FitSettings

    @property
    def prune_target(self) -> float:
        """What the pruner gets: the target as the key holds it. Runs that share a key can
        differ in the last bits (constant 0.1 x 7 = 0.7000000000000001 vs a run clipped to 0.7);
        they must prune the same count, alone or together."""
        return round(self.target, KEY_DECIMALS)


def context_key(cfg: RunConfig, base: str) -> str:
    """Key of the dense starting state: everything that shapes every step of this run."""
    return digest(
        {
            "base": base,
            "seed": cfg.seed,
            "data": data_identity(cfg),
            "prune": identity(cfg)["prune"],
        }
    )


def settings_identity(settings: FitSettings) -> dict[str, Any]:
    fields = {k: v for k, v in asdict(settings).items() if k != "scheduler"}
    return without_added(fields, "fit.")


def plan_steps(cfg: RunConfig, base: str) -> list[StepPlan]:
    """The run's steps with their keys; each key chains the keys before it."""
    targets = cfg.regime.schedule()
    pretrain_lr = cfg.pretrain.optimizer.lr
    parent = context_key(cfg, base)
    plans = []
    for index, (target, inc) in enumerate(zip(targets, increments(targets), strict=True), 1):
        settings = finetune_settings(cfg.finetune, pretrain_lr, first_step=index == 1)
        key = digest(
            {
                "parent": parent,
                "target": round(target, KEY_DECIMALS),
                "finetune": settings_identity(settings),
            }
        )
        plans.append(StepPlan(index, target, inc, key, parent, settings))
        parent = key
    return plans


@dataclass(frozen=True)
class PlannedRun:
    cfg: RunConfig
    run_id: str
    label: str
    root: str  # context key: dense model + seed + data + prune config
    steps: list[StepPlan]

    @property
    def title(self) -> str:
        """The run's name (or regime) with its final target and seed: what tells it apart in a
        sweep's progress ('geometric q=0.3 @0.9 seed 1')."""
        cfg = self.cfg
        return f"{cfg.name or cfg.regime.name} @{cfg.regime.final_target:g} seed {cfg.seed}"


@dataclass
class Node:
    """One pruning step (prune -> fine-tune -> evaluate) shared by every run listed in `runs`."""

    step: StepPlan
    root: str
    runs: list[str] = field(default_factory=list)  # sweep order; the first one owns the row
    children: list[str] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)  # runs whose last step this is

    @property
    def key(self) -> str:
        return self.step.key

    @property
    def depth(self) -> int:
        return self.step.index


@dataclass
class Plan:
    runs: list[PlannedRun]
    nodes: dict[str, Node]  # parents before children
    roots: dict[str, list[str]]  # context key -> keys of its depth-1 nodes

    def run(self, rid: str) -> PlannedRun:
        return self._by_id[rid]

    def __post_init__(self) -> None:
        self._by_id = {r.run_id: r for r in self.runs}

    @property
    def naive_steps(self) -> int:
        """Steps computed when every run starts from the dense model on its own."""
        return sum(len(r.steps) for r in self.runs)

    @property
    def planned_steps(self) -> int:
        return len(self.nodes)

    def critical_path(self) -> dict[str, int]:
        """Number of steps on the longest chain from each node down (itself included)."""
        length: dict[str, int] = {}
        for key in reversed(list(self.nodes)):
            node = self.nodes[key]
            length[key] = 1 + max((length[c] for c in node.children), default=0)
        return length


def default_label(cfg: RunConfig) -> str:
    return cfg.name or f"{cfg.regime.name} -> {cfg.regime.final_target:g}"


def build_plan(configs: Iterable[RunConfig]) -> Plan:
    """The forest of shared steps of `configs` (duplicates by run id are dropped)."""
    runs: list[PlannedRun] = []
    nodes: dict[str, Node] = {}
    roots: dict[str, list[str]] = {}
    seen: set[str] = set()
    for cfg in configs:
        rid = run_id(cfg)
        if rid in seen:
            continue
        seen.add(rid)
        bid = base_id(cfg)
        root = context_key(cfg, bid)
        steps = plan_steps(cfg, bid)
        runs.append(PlannedRun(cfg, rid, default_label(cfg), root, steps))
        for step in steps:
            node = nodes.get(step.key)
            if node is None:
                node = nodes[step.key] = Node(step, root)
                if step.index == 1:
                    roots.setdefault(root, []).append(step.key)
                else:
                    nodes[step.parent_key].children.append(step.key)
            node.runs.append(rid)
        nodes[steps[-1].key].ends.append(rid)
    return Plan(runs, nodes, roots)


# ---------------------------------------------------------------- counts for --dry-run


@dataclass(frozen=True)
class Counts:
    runs: int
    naive_steps: int
    planned_steps: int
    stored_steps: int  # planned steps already in the results directory
    naive_epochs: tuple[int, int]
    planned_epochs: tuple[int, int]  # what is left to compute is `to_compute_epochs`
    to_compute_epochs: tuple[int, int]

    @property
    def to_compute(self) -> int:
        return self.planned_steps - self.stored_steps


def _bounds(plan: Plan, key: str, stored_epochs: dict[str, int]) -> tuple[int, int]:
    """A stored step's real epochs, else the bounds of its settings."""
    if key in stored_epochs:
        return stored_epochs[key], stored_epochs[key]
    return epoch_bounds(plan.nodes[key].step.settings)


def count(plan: Plan, stored_epochs: dict[str, int] | None = None) -> Counts:
    """Naive vs planned steps and fine-tuning epochs; stored steps count with their real epochs."""
    stored_epochs = stored_epochs or {}

    def total(keys: Iterable[str]) -> tuple[int, int]:
        pairs = [_bounds(plan, k, stored_epochs) for k in keys]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    stored = [k for k in plan.nodes if k in stored_epochs]
    return Counts(
        runs=len(plan.runs),
        naive_steps=plan.naive_steps,
        planned_steps=plan.planned_steps,
        stored_steps=len(stored),
        naive_epochs=total(s.key for r in plan.runs for s in r.steps),
        planned_epochs=total(plan.nodes),
        to_compute_epochs=total(k for k in plan.nodes if k not in stored_epochs),
    )


# ---------------------------------------------------------------- the tree as text


def _range(lo_hi: tuple[int, int]) -> str:
    lo, hi = lo_hi
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _chain(plan: Plan, key: str) -> list[str]:
    """The unbranched path from `key` down (it stops at a node with 0 or 2+ children)."""
    chain = [key]
    while len(plan.nodes[chain[-1]].children) == 1:
        chain.append(plan.nodes[chain[-1]].children[0])
    return chain


def render_tree(plan: Plan, stored: dict[str, int] | None = None) -> list[str]:
    """One line per unbranched segment of steps, indented as a tree under its dense root;
    `stored` maps steps already in the results directory to their real epochs."""
    stored = stored or {}
    lines: list[str] = []
    for root, first in plan.roots.items():
        cfg = plan.run(plan.nodes[first[0]].runs[0]).cfg
        lines.append(
            f"seed {cfg.seed} · {cfg.model.name} on {cfg.data.name} · {cfg.prune.criterion} "
            f"{cfg.prune.structure} {cfg.prune.scope} · root {root}"
        )
        _render_children(plan, first, "", stored, lines)
    return lines


def _render_children(
    plan: Plan, keys: list[str], indent: str, stored: dict[str, int], lines: list[str]
) -> None:
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        chain = _chain(plan, key)
        head, tail = plan.nodes[chain[0]], plan.nodes[chain[-1]]
        steps = (
            f"step {head.depth}"
            if len(chain) == 1
            else f"steps {head.depth}-{tail.depth} ({len(chain)})"
        )
        targets = (
            f"{head.step.target:.4f}"
            if len(chain) == 1
            else f"{head.step.target:.4f} -> {tail.step.target:.4f}"
        )
        bounds = [_bounds(plan, k, stored) for k in chain]
        epochs = _range((sum(b[0] for b in bounds), sum(b[1] for b in bounds)))
        done = sum(k in stored for k in chain)
        state = "" if done == 0 else (" [stored]" if done == len(chain) else f" [{done} stored]")
        ends = [
            f"{plan.run(r).label} @{plan.run(r).cfg.regime.final_target:g}"
            for k in chain
            for r in plan.nodes[k].ends
        ]
        shared = f" · {len(head.runs)} runs" if len(head.runs) > 1 else ""
        ending = f" · ends: {'; '.join(ends)}" if ends else ""
        lines.append(
            f"{indent}{'└─' if last else '├─'} {steps}: {targets} · {epochs} epochs"
            f"{shared}{state}{ending}"
        )
        _render_children(plan, tail.children, indent + ("   " if last else "│  "), stored, lines)


def render_counts(counts: Counts) -> list[str]:
    def ratio(a: tuple[int, int], b: tuple[int, int]) -> str:
        parts = {f"{x / y:.3f}" if y else "-" for x, y in zip(a, b, strict=True)}
        return "-".join(sorted(parts))

    exact = counts.naive_epochs[0] == counts.naive_epochs[1]
    note = "" if exact else " (patience: fewest-most)"
    return [
        f"runs: {counts.runs}",
        f"fine-tuning steps: naive {counts.naive_steps}, planned {counts.planned_steps} "
        f"(ratio {counts.planned_steps / max(counts.naive_steps, 1):.3f}); "
        f"stored {counts.stored_steps}, to compute {counts.to_compute}",
        f"fine-tuning epochs{note}: naive {_range(counts.naive_epochs)}, "
        f"planned {_range(counts.planned_epochs)} "
        f"(ratio {ratio(counts.planned_epochs, counts.naive_epochs)}), "
        f"to compute {_range(counts.to_compute_epochs)}",
    ]
