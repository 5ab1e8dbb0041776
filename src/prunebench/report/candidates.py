"""A candidate (one variant at one ratio, all its seeds) and the spreads computed from it.

Two candidates are compared seed by seed (the same seed gives both the same dense model, data
split and test examples) and, where per-example outcomes are stored, example by example, with
the same example indices for both: `advantage` builds the paired difference matrix and hands
it to `uncertainty`. `point_spread` does the same for one candidate's own mean (the figures'
intervals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prunebench.report.prepare import Metric
from prunebench.report.uncertainty import (
    NONE,
    Spread,
    crossed,
    nested,
    one_example_floor,
    seeds_only,
)
from prunebench.store.example_outcomes import Outcomes, unpack
from prunebench.store.results import EVAL_PREFIX

OUTCOME_KIND = {"top1": "correct", "ppl": "nll"}  # metrics that per-example outcomes measure
NO_COMMON_SEED = "no seed in common: cannot pair"


@dataclass(frozen=True)
class Candidate:
    label: str
    regime: str
    criterion: str
    ratio: float
    mean: float  # of the headline metric over seeds
    epochs: float  # mean total fine-tuning epochs
    values: dict[int, float]  # seed -> headline metric
    outcomes: dict[int, Outcomes] = field(default_factory=dict, compare=False)
    failed: tuple[int, ...] = ()  # seeds that diverged (NaN): failures of this variant

    @property
    def seeds(self) -> list[int]:
        return sorted(self.values)


def decode(blobs) -> dict[int, Outcomes]:
    """seed -> Outcomes from (seed, bytes | None) pairs; seeds without a blob are left out."""
    return {int(s): unpack(b) for s, b in blobs if isinstance(b, bytes | bytearray | memoryview)}


def from_summary(row: pd.Series) -> Candidate:
    """A candidate from an analysis.summarize row."""
    return Candidate(
        label=str(row["label"]),
        regime=str(row["regime"]),
        criterion=str(row["criterion"]),
        ratio=float(row["ratio"]),
        mean=float(row["mean"]),
        epochs=float(row["epochs_mean"]),
        values=dict(zip(row["seeds"], row["values"], strict=True)),
        outcomes=row["outcomes"],
        failed=tuple(row.get("failed", ()) or ()),
    )


def outcome_kind(metric: Metric) -> str | None:
    """The kind of per-example outcomes that measure `metric`: the test metric's own, or for an
    evaluation (eval.NAME) NLL per window of a perplexity and right/wrong per document else."""
    if metric.name.startswith(EVAL_PREFIX):
        return "correct" if metric.higher_is_better else "nll"
    return OUTCOME_KIND.get(metric.name)


def _usable(outcomes: dict[int, Outcomes], seeds: list[int], metric: Metric) -> bool:
    kind = outcome_kind(metric)
    return bool(seeds) and all(s in outcomes and outcomes[s].kind == kind for s in seeds)


def shared_groups(outcomes: list[Outcomes]) -> tuple[np.ndarray | None, str]:
    """(the group ids every one of these outcomes carries, their unit), or (None, '') where
    any lacks them or they differ (then the examples count as independent)."""
    first = outcomes[0].groups
    if first is None or any(
        o.groups is None or not np.array_equal(o.groups, first) for o in outcomes[1:]
    ):
        return None, ""
    return first, "document" if outcomes[0].kind == "nll" else "group"


def outcome_spread(
    rows: list[np.ndarray] | np.ndarray,
    binary: bool,
    groups: np.ndarray | None = None,
    unit: str = "group",
) -> Spread:
    """The spread of per-seed rows of per-example values (a list, or an array (..., S, n));
    right/wrong outcomes (`binary`) get the one-example floor; `groups`: a label per example
    where examples come in groups (cluster-robust)."""
    if isinstance(rows, np.ndarray) or len({r.size for r in rows}) == 1:
        y = rows if isinstance(rows, np.ndarray) else np.stack(rows)
        floor = one_example_floor(y.shape[-2] * y.shape[-1]) if binary else 0.0
        return crossed(y, floor, groups, unit)
    return nested(rows, one_example_floor(sum(r.size for r in rows)) if binary else 0.0)


def advantage(a: Candidate, b: Candidate, metric: Metric) -> Spread:
    """A's advantage over B (higher is better; log ppl_B/ppl_A for perplexity), paired."""
    seeds = sorted(set(a.values) & set(b.values))
    if not seeds:
        return Spread(math.nan, math.nan, 0.0, 0, 0, NO_COMMON_SEED)
    sign = 1.0 if metric.higher_is_better else -1.0
    if _usable(a.outcomes, seeds, metric) and _usable(b.outcomes, seeds, metric):
        pairs = [(a.outcomes[s].values, b.outcomes[s].values) for s in seeds]
        if all(x.size == y.size for x, y in pairs):
            groups, unit = shared_groups([a.outcomes[s] for s in seeds]
                                         + [b.outcomes[s] for s in seeds])  # fmt: skip
            diffs = [sign * (x - y) for x, y in pairs]
            return outcome_spread(diffs, outcome_kind(metric) == "correct", groups, unit)
    if metric.higher_is_better:
        diffs = [a.values[s] - b.values[s] for s in seeds]
    else:
        diffs = [math.log(b.values[s]) - math.log(a.values[s]) for s in seeds]
    return seeds_only(np.array(diffs))


def point_spread(c: Candidate, metric: Metric) -> Spread:
    """The spread of the candidate's mean (accuracy, or mean token NLL for perplexity)."""
    if not c.values:
        return Spread(math.nan, math.nan, 0.0, 0, 0, NONE)
    if _usable(c.outcomes, c.seeds, metric):
        groups, unit = shared_groups([c.outcomes[s] for s in c.seeds])
        rows = [c.outcomes[s].values for s in c.seeds]
        return outcome_spread(rows, outcome_kind(metric) == "correct", groups, unit)
    values = np.array([c.values[s] for s in c.seeds])
    return seeds_only(values if metric.higher_is_better else np.log(values))


def point_interval(c: Candidate, metric: Metric, alpha: float) -> tuple[float, float, str]:
    """(low, high, method) of the (1 - alpha) interval of the candidate's metric."""
    spread = point_spread(c, metric)
    low, high = spread.interval(alpha)
    if metric.higher_is_better:  # accuracies: a fraction, whatever the interval says
        low, high = max(low, 0.0), min(high, 1.0)
    else:
        low, high = math.exp(low), math.exp(high)
    return float(low), float(high), spread.method
