"""The paper's claims, checked with the report's own comparisons (decisions.py makes them).

1. one-shot >= iterative (constant, geometric) at ratios up to 80 %   (§5.2, §5.4, App. B)
2. iterative > one-shot above 90 %                                     (§5.3, §6)
3. geometric >= constant                                               (fig. 2)
4. hybrid is best or tied: >= every other regime                       (§5.5)

Each regime is its best variant at the ratio (as in the recommendation); a side of several
regimes is its best regime there. At a ratio, ">=" holds when A is better or equivalent
(within the margin), fails when B is better, and is inconclusive otherwise; ">" holds only when
A is better and fails when B is better or they are equivalent. A claim holds when it holds at
every ratio where both sides were run, fails when it fails at one, and is inconclusive else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from prunebench.report.candidates import Candidate
from prunebench.report.prepare import Metric
from prunebench.report.verdicts import A_BETTER, B_BETTER, EQUIVALENT, Comparison

ITERATIVE = ("constant", "geometric")
HOLDS, FAILS, UNDECIDED, NO_DATA = "holds", "does not hold", "inconclusive", "not enough data"


@dataclass(frozen=True)
class ClaimCheck:
    claim: str
    status: str
    basis: str
    reason: str = ""
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class _Claim:
    text: str
    side_a: tuple[str, ...]  # regimes whose best is side A at a ratio
    side_b: tuple[str, ...] | None  # None: each other regime, one comparison each
    strict: bool
    in_range: Callable[[float], bool]


CLAIMS = [
    _Claim(
        "One-shot >= iterative at ratios up to 80 %",
        ("one_shot",),
        ITERATIVE,
        False,
        lambda r: r <= 0.8 + 1e-9,
    ),
    _Claim(
        "Iterative better than one-shot above 90 %",
        ITERATIVE,
        ("one_shot",),
        True,
        lambda r: r > 0.9 + 1e-9,
    ),
    _Claim("Geometric >= constant", ("geometric",), ("constant",), False, lambda r: True),
    _Claim("Hybrid best or tied", ("hybrid",), None, False, lambda r: True),
]


def _side(best: dict[str, Candidate], regimes: tuple[str, ...], metric: Metric):
    here = [best[r] for r in regimes if r in best]
    return max(here, key=lambda c: (metric.score(c.mean), -c.epochs)) if here else None


def _pairs(claim: _Claim, best: dict[str, Candidate], metric: Metric):
    a = _side(best, claim.side_a, metric)
    if a is None:
        return []
    if claim.side_b is None:
        return [(a, c) for regime, c in sorted(best.items()) if regime not in claim.side_a]
    b = _side(best, claim.side_b, metric)
    return [] if b is None else [(a, b)]


def claim_pairs(
    best: dict[str, Candidate], ratio: float, metric: Metric
) -> list[tuple[Candidate, Candidate]]:
    """The comparisons the claims need at one ratio (regime -> its best candidate there)."""
    return [p for claim in CLAIMS if claim.in_range(ratio) for p in _pairs(claim, best, metric)]


def _holds(claim: _Claim, outcome: str) -> str:
    if outcome == A_BETTER or (outcome == EQUIVALENT and not claim.strict):
        return HOLDS
    if outcome == B_BETTER or (outcome == EQUIVALENT and claim.strict):
        return FAILS
    return UNDECIDED


def check_claim(
    claim: _Claim,
    best: dict[float, dict[str, Candidate]],
    lookup: Callable[[float, str, str], Comparison],
    metric: Metric,
) -> ClaimCheck:
    rows = []
    for ratio in sorted(best):
        if not claim.in_range(ratio):
            continue
        for a, b in _pairs(claim, best[ratio], metric):
            c = lookup(ratio, a.label, b.label)
            rows.append(
                {"ratio": ratio, "a": a.label, "b": b.label, "mean_a": a.mean, "mean_b": b.mean,
                 "comparison": c, "outcome": c.outcome, "holds": _holds(claim, c.outcome)}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    if table.empty:
        b_names = "any other regime" if claim.side_b is None else " or ".join(claim.side_b)
        reason = f"no ratio in range where both {' or '.join(claim.side_a)} and {b_names} finished"
        return ClaimCheck(claim.text, NO_DATA, "", reason, table)
    per_ratio = table.groupby("ratio")["holds"].agg(
        lambda h: FAILS if (h == FAILS).any() else HOLDS if (h == HOLDS).all() else UNDECIDED
    )
    counts = per_ratio.value_counts()
    status = (
        FAILS if counts.get(FAILS) else HOLDS if counts.get(HOLDS) == len(per_ratio) else UNDECIDED
    )
    reason = f"holds at {counts.get(HOLDS, 0)} of {len(per_ratio)} ratios"
    if counts.get(FAILS):
        reason += f", fails at {counts[FAILS]}"
    if counts.get(UNDECIDED):
        reason += f", inconclusive at {counts[UNDECIDED]}"
    methods = sorted({r.method for r in table["comparison"]})
    family = table["comparison"].iloc[0].family
    basis = "; ".join(methods) + (f"; Holm over {family} comparisons" if family else "")
    return ClaimCheck(claim.text, status, basis, reason, table)


def check_claims(
    best: dict[float, dict[str, Candidate]],
    lookup: Callable[[float, str, str], Comparison],
    metric: Metric,
) -> list[ClaimCheck]:
    """`best`: ratio -> regime -> its best candidate; `lookup`: the report's comparisons."""
    return [check_claim(claim, best, lookup, metric) for claim in CLAIMS]
