"""`sweep --until-decided`: a sweep in rounds of seeds, each round only where it is still needed.

Round 1 runs the configured grid. After every round a `decide` callable (the report's
sequential replay, handed in by the CLI so that the engine does not import the report) reads the
stored rows and says which variants need the next seed ((template run id, seed) pairs) or that
nothing is left. The next round runs exactly those: the configs of the template runs with the
seed replaced, through the same `execute` as any sweep (the shared-prefix planner, resuming,
cooperating processes, any executor). The loop stops when nothing is left (every question
decided, or K seeds reached), when the budget is spent (`--budget` epochs of fine-tuning over
the sweep's runs, or `--budget-hours` of this process's wall time, checked before each round),
or when a round changed nothing (its runs failed).

Nothing is kept between rounds but the database: a killed sweep replays the same decisions
from the stored rows and continues with the same next round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from prunebench.config.identity import run_id
from prunebench.config.schema import RunConfig

DECIDED, BUDGET, STUCK = "nothing left to decide", "budget spent", "a round's runs failed"


class Looks(Protocol):
    """What `decide` returns (report.sequential.Rounds)."""

    needs: list[tuple[str, int]]
    finished: bool


@dataclass(frozen=True)
class Budget:
    epochs: float | None = None  # total fine-tuning epochs of the sweep's runs
    hours: float | None = None  # wall time of this process

    def spent(self, epochs: Callable[[], float], seconds: float) -> bool:
        """`epochs` is asked only under an epochs budget (it reads every stored row)."""
        return (self.epochs is not None and epochs() >= self.epochs) or (
            self.hours is not None and seconds >= 3600 * self.hours
        )


@dataclass
class RoundsOutcome:
    rounds: int  # executed by this process (a resumed sweep counts the replayed ones too)
    stop: str
    looks: Looks
    outcomes: list  # what `execute` returned per round


def with_seed(cfg: RunConfig, seed: int) -> RunConfig:
    """The same run with another seed (a new run id)."""
    return cfg.model_copy(update={"seed": seed})


def next_configs(needs: Sequence[tuple[str, int]], templates: dict[str, RunConfig]) -> list:
    """The configs of a round: each template run's config with the needed seed."""
    return [with_seed(templates[rid], seed) for rid, seed in needs]


def run_rounds(
    first: list[RunConfig],
    decide: Callable[[], Looks],
    execute: Callable[[list[RunConfig]], object],
    epochs_spent: Callable[[], float],
    budget: Budget = Budget(),
    clock: Callable[[], float] = time.monotonic,
) -> RoundsOutcome:
    """Run rounds until nothing is left, the budget is spent, or a round changes nothing."""
    started = clock()
    templates = {run_id(cfg): cfg for cfg in first}
    outcomes = [execute(first)]
    previous: list[tuple[str, int]] | None = None
    while True:
        looks = decide()
        if looks.finished:
            return RoundsOutcome(len(outcomes), DECIDED, looks, outcomes)
        if budget.spent(epochs_spent, clock() - started):
            return RoundsOutcome(len(outcomes), BUDGET, looks, outcomes)
        if looks.needs == previous:
            return RoundsOutcome(len(outcomes), STUCK, looks, outcomes)
        previous = looks.needs
        outcomes.append(execute(next_configs(looks.needs, templates)))
