"""The adaptive regime's rule on step histories built by hand (no training)."""

from __future__ import annotations

import pytest

from prunebench.config.adaptive_rule import (
    AdaptiveRule,
    Measured,
    first_choice,
    next_choice,
    nominal,
    recovery,
    step_count_range,
)
from prunebench.config.schedules import adaptive
from prunebench.errors import ScheduleError

TOL = 1e-4


def measured(recovered: float, epochs: int = 4, higher: bool = True) -> Measured:
    """A step that fell from 0.9 to 0.5 and regained `recovered` of the drop in `epochs` of a
    possible 4-20."""
    if higher:
        return Measured(0.9, 0.5, 0.5 + recovered * 0.4, epochs, (4, 20))
    return Measured(10.0, 40.0, 40.0 * (10.0 / 40.0) ** recovered, epochs, (4, 20), False)


def walk(rule: AdaptiveRule, target: float, recoveries: list[tuple[float, int]]):
    """The choices the rule makes when its steps measure `recoveries` in turn (the last one
    repeated once they run out)."""
    history = []
    while (choice := next_choice(rule, target, TOL, history)) is not None:
        recovered, epochs = recoveries[min(len(history), len(recoveries) - 1)]
        history.append((choice, measured(recovered, epochs)))
        assert len(history) < 500
    return [c for c, _ in history]


def test_recovery_is_the_share_of_the_drop_regained():
    assert recovery(Measured(0.9, 0.5, 0.8, 4, (4, 20))) == pytest.approx(0.75)
    assert recovery(Measured(0.9, 0.5, 0.95, 4, (4, 20))) == pytest.approx(1.125)
    assert recovery(Measured(0.9, 0.9, 0.9, 4, (4, 20))) is None  # nothing dropped
    assert recovery(Measured(0.9, None, 0.9, 4, (4, 20))) is None  # not measured
    # perplexity (lower is better) on its logarithm: from 10 to 40, back to 20 = half the drop
    assert recovery(Measured(10.0, 40.0, 20.0, 4, (4, 20), False)) == pytest.approx(0.5)


def test_next_sizes_follow_the_measured_recovery():
    rule = AdaptiveRule()  # first 0.7, rate 0.2, x1.5 / x0.5 within [0.05, 0.5]
    steps = walk(rule, 0.9, [(0.8, 20), (1.0, 5), (1.0, 5), (0.3, 20), (0.7, 10)])
    first, grow1, grow2, shrink, hold = steps[:5]
    assert (first.rule, first.target, first.rate) == ("first cut", pytest.approx(0.63), 0.63)
    # the first cut recovered 0.8 (not full): the second step holds the starting share 0.2
    assert grow1.rule == "hold" and grow1.rate == 0.2 and grow1.recovery == pytest.approx(0.8)
    assert grow1.target == pytest.approx(0.63 + 0.2 * 0.37)
    # full and quick (5 epochs of 4-20): x1.5
    assert (grow2.rule, grow2.rate) == ("grow", pytest.approx(0.3))
    assert grow2.target == pytest.approx(grow1.target + 0.3 * (1 - grow1.target))
    # full and quick again, then poor (0.3 < 0.5): halved
    assert (shrink.rule, shrink.rate) == ("grow", pytest.approx(0.45))
    assert (hold.rule, hold.rate) == ("shrink", pytest.approx(0.225))
    assert steps[-1].target == 0.9  # exactly the target


def test_full_but_slow_recovery_holds_and_the_share_stays_within_its_bounds():
    rule = AdaptiveRule(rate=0.4, max_rate=0.5, min_rate=0.1)
    slow = walk(rule, 0.98, [(1.0, 20)])  # fully recovered, but only at the epoch cap
    assert {c.rule for c in slow[1:]} == {"hold"} and {c.rate for c in slow[1:]} == {0.4}
    grown = walk(rule, 0.98, [(1.0, 4)])
    assert max(c.rate for c in grown[1:]) == 0.5  # capped
    poor = walk(rule, 0.98, [(0.0, 20)])
    assert min(c.rate for c in poor[1:]) == 0.1 and poor[-1].target == 0.98  # floored


def test_every_walk_ends_exactly_at_the_target_without_a_sliver_step():
    for target in (0.3, 0.5, 0.8, 0.9, 0.95, 0.98, 0.999):
        for recoveries in ([(1.0, 4)], [(0.7, 12)], [(0.0, 20)], [(1.0, 4), (0.0, 20)]):
            for rule in (AdaptiveRule(), AdaptiveRule(retry=True), AdaptiveRule(first=1.0)):
                steps = walk(rule, target, recoveries)
                accepted = [c.target for c in steps]
                assert accepted[-1] == target
                gaps = [b.target - b.start for b in steps]
                assert min(gaps) >= TOL - 1e-12
                # no sliver: every step prunes at least min_rate of the weights still left
                shares = [(b.target - b.start) / (1 - b.start) for b in steps]
                assert min(shares) >= rule.min_rate - 1e-9, (target, recoveries, shares)


def test_a_step_that_would_leave_less_than_a_smallest_step_goes_to_the_target():
    """Measured on the tiny LM: 0.7165 grown to a 0.45 share reaches 0.8441, which leaves 0.0059
    to 0.85, less than min_rate x 0.1559 = 0.0078: that step goes to 0.85 instead of leaving a
    step of 4 % of the remaining weights for a full fine-tuning phase."""
    rule = AdaptiveRule()
    start = 0.595 + 0.3 * (1 - 0.595)  # the second step (grown to 0.3) ends here
    history = [(first_choice(rule, 0.85, TOL), measured(1.0, 4))]
    second = next_choice(rule, 0.85, TOL, history)
    assert second.target == pytest.approx(start)
    history.append((second, measured(1.0, 4)))
    third = next_choice(rule, 0.85, TOL, history)
    assert third.rate == pytest.approx(0.45) and third.target == 0.85  # not 0.8441
    history.append((third, measured(1.0, 4)))
    assert next_choice(rule, 0.85, TOL, history) is None
    # with room for a smallest step after it, the step keeps its size
    assert next_choice(rule, 0.9, TOL, history[:2]).target == pytest.approx(
        start + 0.45 * (1 - start)
    )


def test_retry_starts_over_from_the_state_before_a_step_that_did_not_recover():
    rule = AdaptiveRule(retry=True)
    steps = walk(rule, 0.9, [(1.0, 20), (0.1, 20), (1.0, 20)])
    first, second, retried, after = steps[:4]
    assert second.rule == "hold" and second.start == first.target
    # the second step recovered 0.1: rejected, the next one starts where it started, smaller
    assert (retried.rule, retried.retries) == ("retry", 1)
    assert retried.start == second.start and retried.rate == pytest.approx(second.rate / 2)
    assert after.start == retried.target  # a retry that recovers is built on
    # never a retry of a retry, nor of the first cut
    poor = walk(rule, 0.9, [(0.0, 20)])
    assert [c.rule for c in poor[:3]] == ["first cut", "shrink", "retry"]
    assert poor[3].rule == "shrink" and poor[3].start == poor[2].target


def test_the_same_history_gives_the_same_steps():
    rule = AdaptiveRule(retry=True)
    recoveries = [(0.9, 6), (1.2, 5), (0.4, 20), (0.95, 8)]
    assert walk(rule, 0.95, recoveries) == walk(rule, 0.95, recoveries)
    assert next_choice(rule, 0.95, TOL, []) == first_choice(rule, 0.95, TOL)


def test_no_measurable_drop_counts_as_fully_recovered():
    rule = AdaptiveRule()
    first = first_choice(rule, 0.9, TOL)
    flat = Measured(0.9, 0.9, 0.9, 4, (4, 20))
    choice = next_choice(rule, 0.9, TOL, [(first, flat)])
    assert choice.rule == "no drop" and choice.rate == pytest.approx(0.3)
    # a row of an earlier version, without the measurement right after pruning: held
    unmeasured = Measured(0.9, None, 0.9, 4, (4, 20))
    choice = next_choice(rule, 0.9, TOL, [(first, unmeasured)])
    assert (choice.rule, choice.rate, choice.recovery) == ("hold", 0.2, None)


def test_step_count_range_and_the_nominal_schedule():
    rule = AdaptiveRule()
    fewest, most = step_count_range(rule, 0.9, TOL)
    assert fewest == len(walk(rule, 0.9, [(1.0, 4)]))
    assert most == len(walk(rule, 0.9, [(0.0, 20)]))
    assert fewest < len(nominal(rule, 0.9, TOL)) < most
    schedule = adaptive(0.9)
    assert schedule == nominal(rule, 0.9, TOL) and schedule[-1] == 0.9
    assert schedule[0] == pytest.approx(0.63)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"first": 0}, "adaptive.first must be in (0, 1]"),
        ({"rate": 0.6}, "min_rate <= rate <= max_rate"),
        ({"grow": 0.5}, "adaptive.grow must be >= 1"),
        ({"partial": 0.95}, "partial <= full"),
        ({"speed": 1}, "adaptive does not take speed"),
    ],
)
def test_bad_parameters_are_one_line(given, message):
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        adaptive(0.9, adaptive=given)
