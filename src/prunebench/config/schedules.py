"""Pruning schedules: pure functions returning cumulative targets of the ORIGINAL prunable weights.

Every schedule returns a strictly increasing list `s_1 < ... < s_n` whose last value equals the
target exactly. Definitions follow docs/concepts.md (and the paper's tables 3-4 for the hybrid).
Schedules given by a per-step `rate`/`step` generate steps until the target is reached; a last
step that would overshoot is clipped to the target, and a gap smaller than `tolerance` is closed
by stretching the last step instead of adding a sliver step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from prunebench.config.adaptive_rule import AdaptiveRule, nominal
from prunebench.errors import ScheduleError
from prunebench.registry import Registry

DEFAULT_TOLERANCE = 1e-4
MAX_STEPS = 10_000
# Floating-point slack when comparing a generated target with the requested one.
_EPS = 1e-12

SCHEDULES: Registry[Callable[..., list[float]]] = Registry("regime")


def _check_target(target: float) -> float:
    if not isinstance(target, int | float) or not 0.0 < float(target) < 1.0:
        raise ScheduleError(f"target must be in (0, 1), got {target!r}; e.g. --target 0.9")
    return float(target)


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ScheduleError(f"steps must be an integer >= 1, got {steps!r}")
    if steps > MAX_STEPS:
        raise ScheduleError(f"steps must be <= {MAX_STEPS}, got {steps}")
    return steps


def _check_rate(rate: float, name: str = "rate") -> float:
    if not isinstance(rate, int | float) or not 0.0 < float(rate) < 1.0:
        raise ScheduleError(f"{name} must be in (0, 1), got {rate!r}")
    return float(rate)


def _check_tolerance(tolerance: float) -> float:
    if not isinstance(tolerance, int | float) or not 0.0 <= tolerance < 0.01:
        raise ScheduleError(f"tolerance must be in [0, 0.01), got {tolerance!r}")
    return tolerance


def _one_of_steps_or_rate(regime: str, steps: int | None, rate: float | None, rate_name: str):
    if (steps is None) == (rate is None):
        raise ScheduleError(f"{regime} needs exactly one of steps or {rate_name}")


def _until_target(
    start: float, offset: Callable[[int], float], target: float, tolerance: float
) -> list[float]:
    """Cumulative values start + offset(k), k = 1, 2, ..., up to the target.

    The first value within `tolerance` below the target (or above it) becomes the target.
    """
    values: list[float] = []
    for k in range(1, MAX_STEPS + 1):
        value = start + offset(k)
        if value >= target - tolerance - _EPS:
            values.append(target)
            return values
        values.append(value)
    raise ScheduleError(
        f"the rate reaches the target only after more than {MAX_STEPS} steps; use a larger rate"
    )


def _finish(values: Sequence[float], target: float) -> list[float]:
    """Set the last value to the target exactly; refuse a first step that prunes nothing and
    steps that do not grow (a target too small for its step count rounds to 0 or repeats)."""
    out = [float(v) for v in values]
    out[-1] = target
    if not out[0] > 0.0:
        raise ScheduleError(
            f"the first step's target is {out[0]:g}: {target:g} is too small to split into "
            f"{len(out)} steps; use fewer steps or a larger target"
        )
    for k, (a, b) in enumerate(itertools.pairwise(out), 2):
        if not b > a:
            raise ScheduleError(
                f"schedule is not strictly increasing: step {k}'s target {b!r} is not above "
                f"step {k - 1}'s {a!r} (of {len(out)} steps); use fewer steps or increasing targets"
            )
    return out


@SCHEDULES.register("one_shot")
def one_shot(target: float) -> list[float]:
    """Prune everything at once."""
    return [_check_target(target)]


@SCHEDULES.register("constant")
def constant(
    target: float,
    steps: int | None = None,
    step: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[float]:
    """The same share of the ORIGINAL weights each step: `p*k/n`, or `step` until `p`."""
    target = _check_target(target)
    _one_of_steps_or_rate("constant", steps, step, "step")
    if steps is not None:
        n = _check_steps(steps)
        return _finish([target * k / n for k in range(1, n + 1)], target)
    q = _check_rate(step, "step")
    return _finish(_until_target(0.0, lambda k: q * k, target, _check_tolerance(tolerance)), target)


@SCHEDULES.register("geometric")
def geometric(
    target: float,
    steps: int | None = None,
    rate: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[float]:
    """A fixed share `q` of the REMAINING weights each step: `s_k = 1-(1-q)^k`."""
    target = _check_target(target)
    _one_of_steps_or_rate("geometric", steps, rate, "rate")
    if steps is not None:
        n = _check_steps(steps)
        q = 1.0 - (1.0 - target) ** (1.0 / n)
        return _finish([1.0 - (1.0 - q) ** k for k in range(1, n + 1)], target)
    q = _check_rate(rate)
    values = _until_target(0.0, lambda k: 1.0 - (1.0 - q) ** k, target, _check_tolerance(tolerance))
    return _finish(values, target)


@SCHEDULES.register("hybrid")
def hybrid(
    target: float,
    first: float | None = None,
    steps: int | None = None,
    rate: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[float]:
    """One large step to `first`, then increments `q(1-q)^(j-1)` of the ORIGINAL weights.

    With `steps=n`, `q` solves `1-(1-q)^n = target - first` (the reading under which every row
    of the paper's tables 3-4 gives an integer n).
    """
    target = _check_target(target)
    if first is None:
        raise ScheduleError("hybrid needs first (the one-shot step p_k), e.g. --first 0.5")
    first = _check_rate(first, "first")
    if first >= target:
        raise ScheduleError(f"hybrid first ({first}) must be below the target ({target})")
    _one_of_steps_or_rate("hybrid", steps, rate, "rate")
    remaining = target - first
    if steps is not None:
        n = _check_steps(steps)
        q = 1.0 - (1.0 - remaining) ** (1.0 / n)
        tail = [first + 1.0 - (1.0 - q) ** j for j in range(1, n + 1)]
        return _finish([first, *tail], target)
    q = _check_rate(rate)
    tail = _until_target(first, lambda j: 1.0 - (1.0 - q) ** j, target, _check_tolerance(tolerance))
    return _finish([first, *tail], target)


@SCHEDULES.register("agp")
def agp(target: float, steps: int | None = None) -> list[float]:
    """Zhu & Gupta's automated gradual pruning: `s_k = p(1-(1-k/n)^3)`."""
    target = _check_target(target)
    if steps is None:
        raise ScheduleError("agp needs steps, e.g. --steps 10")
    n = _check_steps(steps)
    return _finish([target * (1.0 - (1.0 - k / n) ** 3) for k in range(1, n + 1)], target)


@SCHEDULES.register("manual")
def manual(targets: Sequence[float]) -> list[float]:
    """Explicit cumulative targets, checked to be strictly increasing in (0, 1)."""
    if not targets:
        raise ScheduleError("manual needs a non-empty list of cumulative targets")
    values = [_check_target(t) for t in targets]
    return _finish(values, values[-1])


@SCHEDULES.register("adaptive")
def adaptive(
    target: float, adaptive: dict | None = None, tolerance: float = DEFAULT_TOLERANCE
) -> list[float]:
    """Steps chosen while the run goes, from the recovery each step measures
    (`config/adaptive_rule.py`); returned here: the nominal schedule, every step holding its
    share (what `prunebench schedule` shows next to the rule)."""
    target = _check_target(target)
    return _finish(nominal(AdaptiveRule.of(adaptive), target, _check_tolerance(tolerance)), target)


def increments(cumulative: Sequence[float]) -> list[float]:
    """Per-step shares of the original weights removed: differences of the cumulative targets."""
    previous = [0.0, *cumulative[:-1]]
    return [c - p for c, p in zip(cumulative, previous, strict=True)]
