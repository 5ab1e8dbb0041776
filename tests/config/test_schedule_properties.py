"""Property tests of the schedules: for ANY arguments, either a valid schedule or a ScheduleError.

A valid schedule starts above 0, increases strictly, stays below 1 and ends at the target
exactly. Arguments come from the whole float range (subnormals, 0, 1, negatives, NaN, inf),
not only from plausible settings: that is where the 1e-17 and 5e-324 bugs were.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prunebench.config import schedules
from prunebench.errors import ScheduleError

PROPERTY_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ratios = st.one_of(
    st.floats(min_value=0.0, max_value=1.0),  # plausible values, subnormals and the ends
    st.floats(allow_nan=True, allow_infinity=True),  # anything a float can be
    st.sampled_from([1e-17, 5e-324, 1 - 1e-16, 0.5, 0.9, 0.99]),
    st.integers(-2, 2),
)
step_counts = st.one_of(st.none(), st.integers(-3, 40), st.sampled_from([10_000, 10_001]))
optional_ratios = st.one_of(st.none(), ratios)
tolerances = st.one_of(st.floats(0.0, 0.02), st.floats(allow_nan=True), st.integers(-1, 1))


def assert_valid(cumulative: list[float], target: float) -> None:
    assert cumulative, "a schedule has at least one step"
    assert cumulative[-1] == target  # exactly, not approximately
    assert cumulative[0] > 0.0
    assert all(b > a for a, b in itertools.pairwise(cumulative))
    assert all(math.isfinite(v) and 0.0 < v < 1.0 for v in cumulative)


def check(call, target) -> None:
    """`call()` gives a valid schedule ending at `target`, or raises ScheduleError."""
    try:
        cumulative = call()
    except ScheduleError:
        return
    assert_valid(cumulative, target)


@PROPERTY_SETTINGS
@given(target=ratios)
def test_one_shot(target):
    check(lambda: schedules.one_shot(target), target)


@PROPERTY_SETTINGS
@given(target=ratios, steps=step_counts, step=optional_ratios, tolerance=tolerances)
def test_constant(target, steps, step, tolerance):
    check(lambda: schedules.constant(target, steps=steps, step=step, tolerance=tolerance), target)


@PROPERTY_SETTINGS
@given(target=ratios, steps=step_counts, rate=optional_ratios, tolerance=tolerances)
def test_geometric(target, steps, rate, tolerance):
    check(lambda: schedules.geometric(target, steps=steps, rate=rate, tolerance=tolerance), target)


@PROPERTY_SETTINGS
@given(
    target=ratios, first=optional_ratios, steps=step_counts, rate=optional_ratios, tol=tolerances
)
def test_hybrid(target, first, steps, rate, tol):
    def call():
        cumulative = schedules.hybrid(target, first=first, steps=steps, rate=rate, tolerance=tol)
        assert cumulative[0] == first  # the one-shot step is exactly p_k
        return cumulative

    check(call, target)


@PROPERTY_SETTINGS
@given(target=ratios, steps=step_counts)
def test_agp(target, steps):
    check(lambda: schedules.agp(target, steps=steps), target)


@PROPERTY_SETTINGS
@given(targets=st.lists(ratios, max_size=8))
def test_manual(targets):
    check(lambda: schedules.manual(targets), targets[-1] if targets else None)


@pytest.mark.parametrize(
    "call",
    [lambda: schedules.geometric(1e-17, steps=2), lambda: schedules.constant(5e-324, steps=2)],
)
def test_a_target_too_small_for_its_steps_is_refused(call):
    with pytest.raises(ScheduleError, match="too small to split into 2 steps"):
        call()
