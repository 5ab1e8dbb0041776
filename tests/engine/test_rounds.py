"""The rounds of `sweep --until-decided` (engine/rounds.py) with a scripted `decide`: what each
round runs, and each way it stops."""

from __future__ import annotations

from dataclasses import dataclass

from prunebench.config.identity import run_id
from prunebench.engine.rounds import BUDGET, DECIDED, STUCK, Budget, run_rounds


@dataclass
class Looks:
    needs: list
    finished: bool


def first_round(tiny) -> list:
    return [tiny("seed=0"), tiny("seed=1"),
            tiny("seed=0", "regime.name=one_shot", "regime.steps=null")]  # fmt: skip


def test_each_round_runs_the_needed_seeds_of_the_template_runs(tiny):
    first, executed = first_round(tiny), []
    execute = executed.append
    geometric, one_shot = run_id(first[0]), run_id(first[2])
    script = [Looks([(geometric, 2), (one_shot, 2)], False), Looks([(one_shot, 3)], False),
              Looks([], True)]  # fmt: skip
    decide = iter(script).__next__
    outcome = run_rounds(first, decide, execute, lambda: 0.0)
    assert outcome.stop == DECIDED and outcome.rounds == 3
    assert executed[0] == first
    assert [(c.regime.name, c.seed) for c in executed[1]] == [("geometric", 2), ("one_shot", 2)]
    assert [(c.regime.name, c.seed) for c in executed[2]] == [("one_shot", 3)]
    assert executed[1][0].model_copy(update={"seed": 0}) == first[0]  # only the seed differs


def test_the_budget_and_a_round_that_changes_nothing_stop_the_rounds(tiny):
    first, executed = first_round(tiny), []
    execute = executed.append
    need = [(run_id(first[0]), 2)]
    spent = iter([5.0, 12.0])
    decide = iter([Looks(need, False), Looks(need, False)]).__next__
    outcome = run_rounds(first, decide, execute, spent.__next__, Budget(epochs=10))
    assert outcome.stop == BUDGET and len(executed) == 2  # the first round and one more
    decide = iter([Looks(need, False), Looks(need, False)]).__next__
    executed.clear()
    outcome = run_rounds(first, decide, execute, lambda: 0.0)
    assert outcome.stop == STUCK and len(executed) == 2  # the same needs again: runs failed
    clock = iter([0.0, 7200.0]).__next__
    decide = iter([Looks(need, False)]).__next__
    outcome = run_rounds(first, decide, execute, lambda: 0.0, Budget(hours=1.5), clock)
    assert outcome.stop == BUDGET


def test_the_stored_epochs_are_read_only_under_an_epochs_budget(tiny):
    """Counting the epochs spent reads every stored row: not once per round without --budget."""
    first, asked = first_round(tiny), []

    def epochs_spent() -> float:
        asked.append(1)
        return 0.0

    need = [(run_id(first[0]), 2)]
    decide = iter([Looks(need, False), Looks([], True)]).__next__
    outcome = run_rounds(first, decide, lambda configs: None, epochs_spent)
    assert outcome.stop == DECIDED and outcome.rounds == 2 and asked == []
    decide = iter([Looks(need, False), Looks([], True)]).__next__
    run_rounds(first, decide, lambda configs: None, epochs_spent, Budget(epochs=10))
    assert asked == [1]
