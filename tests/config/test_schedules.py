"""Schedules against hand-computed values and the paper's hybrid tables 3-4."""

from __future__ import annotations

import itertools
import math

import pytest

from prunebench.config import schedules
from prunebench.errors import ScheduleError

# (one-shot step p_k, iterative rate q, target p) from the paper's tables 3 and 4.
PAPER_HYBRID_ROWS = [
    (0.5, 0.01842, 0.7), (0.6, 0.01741, 0.7), (0.5, 0.04365, 0.7), (0.6, 0.03451, 0.7),
    (0.5, 0.07168, 0.7), (0.6, 0.1, 0.7), (0.5, 0.01962, 0.8), (0.6, 0.01842, 0.8),
    (0.7, 0.01741, 0.8), (0.5, 0.04968, 0.8), (0.6, 0.04365, 0.8), (0.7, 0.03451, 0.8),
    (0.5, 0.08531, 0.8), (0.6, 0.07168, 0.8), (0.7, 0.05132, 0.8), (0.5, 0.01972, 0.88),
    (0.6, 0.01914, 0.88), (0.7, 0.01965, 0.88), (0.8, 0.01654, 0.88), (0.5, 0.04668, 0.88),
    (0.6, 0.04585, 0.88), (0.7, 0.0484, 0.88), (0.8, 0.04083, 0.88), (0.5, 0.09118, 0.88),
    (0.6, 0.07884, 0.88), (0.7, 0.09446, 0.88), (0.8, 0.08, 0.88), (0.5, 0.01997, 0.92),
    (0.6, 0.0191, 0.92), (0.7, 0.01893, 0.92), (0.8, 0.0181, 0.92), (0.5, 0.04831, 0.92),
    (0.6, 0.04706, 0.92), (0.7, 0.04848, 0.92), (0.8, 0.04172, 0.92), (0.5, 0.08679, 0.92),
    (0.6, 0.09191, 0.92), (0.7, 0.07948, 0.92), (0.8, 0.06192, 0.92), (0.5, 0.01968, 0.96),
    (0.6, 0.01922, 0.96), (0.7, 0.01987, 0.96), (0.8, 0.01919, 0.96), (0.5, 0.04629, 0.96),
    (0.6, 0.04838, 0.96), (0.7, 0.04895, 0.96), (0.8, 0.04265, 0.96), (0.5, 0.0976, 0.96),
    (0.6, 0.08539, 0.96), (0.7, 0.0955, 0.96), (0.8, 0.08348, 0.96), (0.5, 0.01961, 0.99),
    (0.6, 0.01958, 0.99), (0.7, 0.01994, 0.99), (0.8, 0.01897, 0.99), (0.5, 0.04696, 0.99),
    (0.6, 0.04823, 0.99), (0.7, 0.04775, 0.99), (0.8, 0.04127, 0.99), (0.5, 0.09171, 0.99),
    (0.6, 0.09413, 0.99), (0.7, 0.08206, 0.99), (0.8, 0.1, 0.99),
]  # fmt: skip


def test_one_shot_is_the_target():
    assert schedules.one_shot(0.8) == [0.8]


def test_constant_steps_hand_computed():
    assert schedules.constant(0.8, steps=4) == pytest.approx([0.2, 0.4, 0.6, 0.8], abs=1e-15)
    assert schedules.constant(0.8, steps=4)[-1] == 0.8


def test_constant_step_size_clips_last_step():
    # 0.1, 0.2, ..., 0.9 then 0.95 (a full 0.1 step would overshoot to 1.0)
    values = schedules.constant(0.95, step=0.1)
    assert values == pytest.approx([0.1 * k for k in range(1, 10)] + [0.95])
    assert values[-1] == 0.95


def test_constant_step_that_divides_target_has_no_sliver_step():
    # 0.9 / 0.1 is 9.000000000000002 in floating point: still nine steps
    assert len(schedules.constant(0.9, step=0.1)) == 9
    assert len(schedules.constant(0.6, step=0.2)) == 3


def test_geometric_steps_hand_computed():
    # target 0.75 in 2 steps: q = 1 - 0.25**0.5 = 0.5 -> 0.5, 0.75
    assert schedules.geometric(0.75, steps=2) == pytest.approx([0.5, 0.75])
    # target 0.875 in 3 steps: q = 0.5 -> 0.5, 0.75, 0.875
    assert schedules.geometric(0.875, steps=3) == pytest.approx([0.5, 0.75, 0.875])


def test_geometric_rate_ends_exactly_on_target():
    # The peer code's geometric 0.2 to 0.9 ends at 91.41 %: ours clips the last step to 0.9.
    values = schedules.geometric(0.9, rate=0.2)
    expected = [1 - 0.8**k for k in range(1, 12)]  # 0.2 ... 0.8926, then 0.9141 -> clipped
    assert values[:-1] == pytest.approx(expected[:-1])
    assert values[-1] == 0.9
    assert len(values) == 11


def test_geometric_rate_gap_below_tolerance_is_stretched():
    # 1 - 0.5**3 = 0.875; a target 5e-5 above it is reached by stretching step 3, not a 4th step
    values = schedules.geometric(0.87505, rate=0.5)
    assert values == pytest.approx([0.5, 0.75, 0.87505])
    # with no tolerance a sliver 4th step is added
    assert len(schedules.geometric(0.87505, rate=0.5, tolerance=0.0)) == 4


def test_hybrid_steps_hand_computed():
    # first 0.5, then 1-(1-q)^2 = 0.25 -> q = 1 - 0.75**0.5
    q = 1 - math.sqrt(0.75)
    values = schedules.hybrid(0.75, first=0.5, steps=2)
    assert values == pytest.approx([0.5, 0.5 + q, 0.75])
    assert values[-1] == 0.75


def test_hybrid_example_from_design_notes():
    # 0.5 / 0.01842 / 0.7 -> n = 12 iterative steps after the one-shot step
    values = schedules.hybrid(0.7, first=0.5, rate=0.01842)
    assert len(values) == 13
    assert values[0] == 0.5 and values[-1] == 0.7
    assert values[1] == pytest.approx(0.5 + 0.01842)


@pytest.mark.parametrize(("first", "rate", "target"), PAPER_HYBRID_ROWS)
def test_paper_hybrid_rows_give_integer_step_counts(first, rate, target):
    n_real = math.log(1 - (target - first)) / math.log(1 - rate)
    n = round(n_real)
    assert abs(n_real - n) < 0.01  # the paper's rates are rounded: n is an integer to 1e-2
    values = schedules.hybrid(target, first=first, rate=rate)
    assert len(values) == n + 1
    assert values[-1] == target
    # the tail follows q(1-q)^(j-1) increments of the original weights
    for j in range(1, n):
        assert values[j] == pytest.approx(first + 1 - (1 - rate) ** j, abs=1e-12)


def test_agp_cubic():
    values = schedules.agp(0.8, steps=4)
    expected = [0.8 * (1 - (1 - k / 4) ** 3) for k in range(1, 5)]
    assert values == pytest.approx(expected)
    assert values[-1] == 0.8


def test_manual_passes_through():
    assert schedules.manual([0.3, 0.6, 0.9]) == [0.3, 0.6, 0.9]


def test_increments_sum_to_target():
    values = schedules.geometric(0.96, rate=0.2)
    inc = schedules.increments(values)
    assert inc[0] == values[0]
    assert sum(inc) == pytest.approx(0.96)
    assert all(d > 0 for d in inc)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: schedules.one_shot(1.0), "target must be in (0, 1)"),
        (lambda: schedules.one_shot(0.0), "target must be in (0, 1)"),
        (lambda: schedules.one_shot(-0.2), "target must be in (0, 1)"),
        (lambda: schedules.constant(0.5), "exactly one of steps or step"),
        (lambda: schedules.constant(0.5, steps=2, step=0.1), "exactly one of steps or step"),
        (lambda: schedules.constant(0.5, steps=0), "steps must be an integer >= 1"),
        (lambda: schedules.geometric(0.5, rate=0.0), "rate must be in (0, 1)"),
        (lambda: schedules.geometric(0.5, rate=-0.1), "rate must be in (0, 1)"),
        (lambda: schedules.hybrid(0.5, first=0.6, rate=0.1), "must be below the target"),
        (lambda: schedules.hybrid(0.5, rate=0.1), "hybrid needs first"),
        (lambda: schedules.agp(0.5), "agp needs steps"),
        (lambda: schedules.manual([0.5, 0.4]), "strictly increasing"),
        (lambda: schedules.manual([]), "non-empty"),
        (lambda: schedules.geometric(0.99, rate=1e-7), "more than"),
    ],
)
def test_impossible_arguments_are_rejected(call, message):
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


@pytest.mark.parametrize("regime", ["constant", "geometric"])
@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95, 0.98, 0.99])
def test_every_schedule_is_strictly_increasing_and_exact(regime, target):
    func = getattr(schedules, regime)
    for steps in (1, 3, 7, 20):
        values = func(target, steps=steps)
        assert len(values) == steps
        assert values[-1] == target
        assert all(b > a for a, b in itertools.pairwise(values))
