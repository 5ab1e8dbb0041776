"""`prunebench sweep --until-decided`: the CLI's side of the rounds (engine/rounds.py) and their
sequential decisions (report/sequential.py).

The sweep command hands in how to execute a list of configs (its planner, executor, progress
and logging); this module checks the options, stores the design in the results directory (so
that a resumed sweep, `report` and `advise` replay the same looks), wires the replay into the
rounds, and prints per question the decision, the seeds it took, and for open ones why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from prunebench.config.identity import run_id
from prunebench.config.schema import RunConfig
from prunebench.engine.plan import build_plan, count, render_counts
from prunebench.engine.rounds import Budget, RoundsOutcome, run_rounds, with_seed
from prunebench.errors import PrunebenchError
from prunebench.report.prepare import final_runs
from prunebench.report.sequential import Design, replay
from prunebench.report.sequential_text import question_lines
from prunebench.store.database import Store
from prunebench.store.results import load_results

DEFAULT_MAX_SEEDS = 6
MOST_SEEDS = 100  # --max-seeds: far beyond any sweep's means, and boundaries solved in seconds


def design_for(
    configs: list[RunConfig],
    directory: Path,
    max_seeds: int | None,
    budget_epochs: float | None,
    budget_hours: float | None,
    margin: float | None = None,
    alpha: float = 0.05,
) -> tuple[Design, Budget]:
    """The design and budget of the options, checked (one line each), and compared with the one a
    killed sweep stored."""
    first = tuple(sorted({cfg.seed for cfg in configs}))
    most = DEFAULT_MAX_SEEDS if max_seeds is None else max_seeds
    if most < max(len(first), 3):
        raise PrunebenchError(
            f"--max-seeds must be at least 3 and at least the {len(first)} configured seeds, "
            f"got {most}"
        )
    if most > MOST_SEEDS:  # the boundaries' integration grows with the looks: keep it seconds
        raise PrunebenchError(f"--max-seeds must be at most {MOST_SEEDS}, got {most}")
    if budget_epochs is not None and budget_hours is not None:
        raise PrunebenchError("give --budget (epochs) or --budget-hours, not both")
    for value, option in ((budget_epochs, "--budget"), (budget_hours, "--budget-hours")):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise PrunebenchError(f"{option} must be a finite number > 0, got {value:g}")
    design = Design(first, most, alpha, margin)
    stored = Design.load(directory)
    if stored is not None and not stored.current:
        raise PrunebenchError(
            f"'{directory}' holds an --until-decided sweep whose looks were made by an earlier "
            f"sequential method ({stored.method}); they cannot be continued with this version's "
            "boundaries: use another --results directory (plain sweeps, results and report still "
            "read its rows)"
        )
    if stored is not None and stored != design:
        raise PrunebenchError(
            f"'{directory}' holds an --until-decided sweep with another design "
            f"({stored.first_seeds} seeds first, at most {stored.max_seeds}); rerun it with the "
            "same seeds and --max-seeds, or use another --results directory"
        )
    return design, Budget(budget_epochs, budget_hours)


def dry_run_lines(configs: list[RunConfig], design: Design, directory: Path) -> list[str]:
    """The range of the work: the first round only .. K seeds everywhere (writes nothing)."""
    everything = [with_seed(cfg, seed) for cfg in configs for seed in design.extra_seeds
                  if cfg.seed == design.first_seeds[0]]  # fmt: skip
    store = Store(directory)

    def counted(cfgs):
        plan = build_plan(cfgs)
        return count(plan, store.stored_epochs(plan.nodes))

    first, most = counted(configs), counted(configs + everything)
    return [
        f"--until-decided: between the first round ({len(design.first_seeds)} seeds) and "
        f"{design.max_seeds} seeds everywhere",
        "first round only:",
        *(f"  {line}" for line in render_counts(first)),
        f"{design.max_seeds} seeds everywhere:",
        *(f"  {line}" for line in render_counts(most)),
    ]


def run_until_decided(
    configs: list[RunConfig],
    directory: Path,
    design: Design,
    budget: Budget,
    execute: Callable[[list[RunConfig]], object],
) -> tuple[RoundsOutcome, list[str]]:
    """Run the rounds; returns their outcome and the per-question lines to print."""
    directory.mkdir(parents=True, exist_ok=True)
    design.save(directory)
    ours = {run_id(cfg) for cfg in configs} | {
        run_id(with_seed(cfg, seed)) for cfg in configs for seed in design.extra_seeds
    }

    def decide():
        return replay(_rows(directory, ours), design)

    def epochs_spent() -> float:
        finals = final_runs(_rows(directory, ours))
        return float(finals["epochs"].sum()) if not finals.empty else 0.0

    outcome = run_rounds(configs, decide, execute, epochs_spent, budget)
    looks = outcome.looks
    lines = [
        f"--until-decided: {outcome.rounds} round(s) here, {looks.seeds} seeds at the last look, "
        f"stopped: {outcome.stop}",
        *question_lines(looks, "" if looks.finished else outcome.stop),
    ]
    return outcome, lines


def _rows(directory: Path, ours: set[str]):
    """The results of this sweep's runs (the first round's and every seed rounds may add), and
    of no other run in the directory."""
    results = load_results(directory, outcomes=True)
    return results if results.empty else results[results["run_id"].isin(ours)]
