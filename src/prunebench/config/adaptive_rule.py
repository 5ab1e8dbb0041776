"""The adaptive regime's rule: each step's size chosen from what the step before it measured.

Pure and light (no torch): the driver asks `next_choice` for a run's next step when the row of
its last step is stored; `prunebench schedule` and `--dry-run` simulate it (`nominal`,
`step_count_range`). docs/concepts.md gives the rule and the reasoning behind its defaults.

Sizes: the first cut prunes `first` x the target of the original weights (the paper's hybrid
guidance: 60-80 % of the target in one step, then finer steps). Every later step prunes a share
`rate` of the weights still left (a geometric-like step: the same share is a smaller amount as
the model gets sparser). After each step its recovery R is read on the VALIDATION split:

    R = (after fine-tuning - right after pruning) / (before pruning - right after pruning)

(perplexity on its logarithm, i.e. the loss), and whether it was quick: the epochs the patience
rule needed lie within the first `quick` share of the range the step's fine-tuning can take.
R >= `full` and quick: the next share is `grow` x larger (at most `max_rate`); R < `partial`: it
is `shrink` x smaller (at least `min_rate`), and with `retry` the step is rejected: the next one
starts again from the previous step's best weights with the smaller share (once per step, never
for the first cut); otherwise the share is held. A step whose pruning cost nothing measurable
counts as fully recovered. No step prunes less than `tolerance` of the original weights, and a
step that would leave less to the target than the smallest step the rule can take from there
(`min_rate` of the weights then left, and at least `tolerance`) goes to the target instead: every
run ends exactly at its target, and no step (the last included) prunes less than `min_rate` of
the weights still left, so fine-tuning is never spent on a sliver (a step that absorbs the
rest prunes at most `min_rate` more than its share).

RULE_VERSION is part of an adaptive run's id (config/identity.py): a rule that chooses
different steps for the same measurements gives new run ids, so stored runs of an earlier rule
are never taken for runs of this one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from prunebench.errors import ScheduleError

MAX_STEPS = 10_000
# 2: the step that would leave less than one smallest step (min_rate) to go goes to the target
RULE_VERSION = 2


@dataclass(frozen=True)
class AdaptiveRule:
    """The rule's parameters (`regime.adaptive` in a config); see the module docstring."""

    first: float = 0.7  # first cut, as a fraction of the target
    rate: float = 0.2  # the second step's share of the remaining weights
    min_rate: float = 0.05
    max_rate: float = 0.5
    grow: float = 1.5
    shrink: float = 0.5
    full: float = 0.9  # recovery counted as full
    partial: float = 0.5  # recovery below this: a smaller step (and a retry, with `retry`)
    quick: float = 0.5  # share of the epoch range within which a recovery counts as quick
    retry: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ScheduleError:
            return ScheduleError(f"adaptive.{name} {why}, got {getattr(self, name)!r}")

        for name in ("first", "quick"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise bad(name, "must be in (0, 1]")
        for name in ("rate", "min_rate", "max_rate"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise bad(name, "must be in (0, 1)")
        if not self.min_rate <= self.rate <= self.max_rate:
            raise ScheduleError(
                f"adaptive needs min_rate <= rate <= max_rate, got {self.min_rate:g}, "
                f"{self.rate:g}, {self.max_rate:g}"
            )
        if not self.grow >= 1.0:
            raise bad("grow", "must be >= 1")
        if not 0.0 < self.shrink <= 1.0:
            raise bad("shrink", "must be in (0, 1]")
        if not 0.0 <= self.partial <= self.full:
            raise ScheduleError(
                f"adaptive needs 0 <= partial <= full, got {self.partial:g}, {self.full:g}"
            )

    @classmethod
    def of(cls, given: dict[str, Any] | None) -> AdaptiveRule:
        """From a config's `regime.adaptive` mapping (unknown keys are an error)."""
        given = given or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ScheduleError(
                f"adaptive does not take {', '.join(unknown)} (it takes {', '.join(sorted(known))})"
            )
        return cls(**{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class Measured:
    """What one step measured on the validation split, and the epochs it took."""

    before: float  # metric of the state the step started from
    pruned: float | None  # right after pruning (None: not measured, a row of an earlier version)
    after: float  # best metric after fine-tuning
    epochs: int
    epoch_range: tuple[int, int]  # fewest and most epochs its fine-tuning could take
    higher_is_better: bool = True


def recovery(m: Measured) -> float | None:
    """The fraction of the pruning drop that fine-tuning regained; None: no measurable drop or
    no measurement right after pruning."""
    if m.pruned is None:
        return None
    values = [m.before, m.pruned, m.after]
    if not m.higher_is_better:  # perplexity: compare losses
        values = [-math.log(max(v, 1e-12)) for v in values]
    before, pruned, after = values
    drop = before - pruned
    if not drop > 1e-12:
        return None
    return (after - pruned) / drop


def quick(rule: AdaptiveRule, m: Measured) -> bool:
    lo, hi = m.epoch_range
    return m.epochs <= lo + rule.quick * (hi - lo)


@dataclass(frozen=True)
class Choice:
    """One step the rule chose: where it starts, where it goes, and why."""

    start: float  # cumulative fraction pruned before the step (the state it starts from)
    target: float  # cumulative fraction after it
    rate: float  # share of the remaining weights it prunes
    rule: str  # first cut | grow | hold | shrink | retry | no drop
    recovery: float | None = None  # the previous step's measured recovery (None: none)
    retries: int | None = None  # index (0-based) of the rejected step it starts over from


def _finish(rule: AdaptiveRule, value: float, target: float, tolerance: float) -> float:
    """`value`, or the target where the rest would be less than the smallest next step."""
    smallest_next = max(rule.min_rate * (1.0 - value), tolerance)
    return target if target - value < smallest_next + 1e-12 else value


def _to(rule: AdaptiveRule, start: float, rate: float, target: float, tolerance: float) -> float:
    """Where a step of share `rate` from `start` goes: never less than `tolerance` further,
    and to the target when it would leave less than one smallest step to go."""
    return _finish(rule, start + max(rate * (1.0 - start), tolerance), target, tolerance)


def first_choice(rule: AdaptiveRule, target: float, tolerance: float) -> Choice:
    cut = _finish(rule, rule.first * target, target, tolerance)
    return Choice(0.0, cut, cut, "first cut")


def next_choice(
    rule: AdaptiveRule,
    target: float,
    tolerance: float,
    history: list[tuple[Choice, Measured | None]],
) -> Choice | None:
    """The step after `history` (each chosen step with what it measured; None, or no
    measurement right after pruning: the share is held), or None when the last accepted step
    reached the target."""
    if not history:
        return first_choice(rule, target, tolerance)
    last, measured = history[-1]
    base = rule.rate if last.rule == "first cut" else last.rate
    if measured is None or measured.pruned is None:  # nothing to go by: keep the share
        fired, r, rate = "hold", None, base
    else:
        r = recovery(measured)
        full = r is None or r >= rule.full
        if full and quick(rule, measured):
            fired, rate = (
                ("grow" if r is not None else "no drop"),
                min(base * rule.grow, rule.max_rate),
            )
        elif r is None or r >= rule.partial:
            fired, rate = "hold", base
        else:
            fired, rate = "shrink", max(base * rule.shrink, rule.min_rate)
    can_retry = last.rule != "first cut" and last.retries is None and rate < last.rate
    if fired == "shrink" and rule.retry and can_retry:
        start = last.start
        return Choice(
            start, _to(rule, start, rate, target, tolerance), rate, "retry", r, len(history) - 1
        )
    if last.target >= target:
        return None
    start = last.target
    return Choice(start, _to(rule, start, rate, target, tolerance), rate, fired, r)


def simulate(rule: AdaptiveRule, target: float, tolerance: float, outcome: str) -> list[Choice]:
    """The steps the rule takes when every step's recovery reads as `outcome` ('full' and quick,
    'hold' or 'poor'): the fewest, the nominal and the most steps it can take."""
    recovered = {"full": 1.0, "hold": (rule.partial + rule.full) / 2, "poor": -1.0}[outcome]
    measured = Measured(1.0, 0.0, recovered, 0, (0, 0))
    history: list[tuple[Choice, Measured | None]] = []
    while (choice := next_choice(rule, target, tolerance, history)) is not None:
        history.append((choice, measured))
        if len(history) > MAX_STEPS:
            raise ScheduleError(f"adaptive takes more than {MAX_STEPS} steps; raise min_rate")
    return [c for c, _ in history]


def nominal(rule: AdaptiveRule, target: float, tolerance: float) -> list[float]:
    """Cumulative targets when every step holds its share: what `schedule` shows."""
    return [c.target for c in simulate(rule, target, tolerance, "hold")]


def step_count_range(rule: AdaptiveRule, target: float, tolerance: float) -> tuple[int, int]:
    """Fewest and most steps the rule can take (every step grows / every step shrinks)."""
    return len(simulate(rule, target, tolerance, "full")), len(
        simulate(rule, target, tolerance, "poor")
    )


def describe(rule: AdaptiveRule, target: float, tolerance: float) -> list[str]:
    """The rule in words, with its bounds (what `prunebench schedule adaptive` prints)."""
    fewest, most = step_count_range(rule, target, tolerance)
    retry = (
        "; a step below it is rejected and retried from the weights before it (once)"
        if rule.retry
        else ""
    )
    return [
        f"first cut: {rule.first:g} x the target = {first_choice(rule, target, tolerance).target:.6g}",
        f"then each step prunes a share of the weights left, starting at {rule.rate:g}, "
        f"within [{rule.min_rate:g}, {rule.max_rate:g}]",
        f"recovery >= {rule.full:g} of the drop (validation) within the first {rule.quick:g} of "
        f"the epoch range: share x{rule.grow:g}",
        f"recovery < {rule.partial:g}: share x{rule.shrink:g}{retry}; otherwise: held",
        f"{fewest} to {most} steps; the table: every step holding its share",
    ]
