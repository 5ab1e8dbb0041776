"""The paper's claims, checked on these results (each regime = its main configuration).

1. one-shot >= iterative (constant, geometric) at ratios up to 80 %   (§5.2, §5.4, App. B)
2. iterative > one-shot above 90 %                                     (§5.3, §6)
3. geometric >= constant                                               (fig. 2)
4. hybrid is best or tied with the best other regime                   (§5.5)

">=" holds at a ratio unless the other side is better (significantly, when there are seeds to
test with; by mean with one seed). ">" needs the claimed side to be better in the same sense.
A claim holds when it holds at every ratio where both sides were run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from prunebench.report.prepare import Metric
from prunebench.report.stats import ALPHA, welch

ITERATIVE = ("constant", "geometric")
HOLDS, FAILS, NO_DATA = "holds", "does not hold", "not enough data"


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
    side_a: tuple[str, ...]  # regimes whose best (by mean) is side A at a ratio
    side_b: tuple[str, ...] | None  # None: every other regime
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


def _best(rows: pd.DataFrame, metric: Metric) -> pd.Series | None:
    rows = rows[rows["mean"].notna()]
    if rows.empty:
        return None
    return rows.loc[rows["mean"].map(metric.score).idxmax()]


def _outcome(a: pd.Series, b: pd.Series, metric: Metric, alpha: float) -> tuple[dict, str]:
    c = welch(a["values"], b["values"])
    a_better = metric.score(c.mean_a) > metric.score(c.mean_b)
    # With seeds, "better" means significantly better; with one seed, a better mean.
    decided = c.significant(alpha) if c.testable else c.mean_a != c.mean_b
    outcome = ("A better" if a_better else "B better") if decided else "tied"
    row = {
        "a": a["label"],
        "b": b["label"],
        "mean_a": c.mean_a,
        "mean_b": c.mean_b,
        "n_a": c.n_a,
        "n_b": c.n_b,
        "diff": c.diff,
        "p": c.p,
    }
    return row, outcome


def check_claim(claim: _Claim, reps: pd.DataFrame, metric: Metric, alpha: float) -> ClaimCheck:
    """`reps`: per regime and ratio its main configuration (one criterion, no random)."""
    rows = []
    for ratio, group in reps.groupby("ratio", sort=True):
        if not claim.in_range(float(ratio)):
            continue
        a = _best(group[group["regime"].isin(claim.side_a)], metric)
        others = ~group["regime"].isin(claim.side_a)
        b_rows = (
            group[others] if claim.side_b is None else group[group["regime"].isin(claim.side_b)]
        )
        b = _best(b_rows, metric)
        if a is None or b is None:
            continue
        row, outcome = _outcome(a, b, metric, alpha)
        holds = outcome == "A better" if claim.strict else outcome != "B better"
        rows.append({"ratio": float(ratio), **row, "outcome": outcome, "holds": holds})
    table = pd.DataFrame(rows)
    if table.empty:
        b_names = "any other regime" if claim.side_b is None else " or ".join(claim.side_b)
        reason = f"no ratio in range where both {' or '.join(claim.side_a)} and {b_names} finished"
        return ClaimCheck(claim.text, NO_DATA, "", reason, table)
    tested = table["p"].notna()
    if tested.all():
        basis = f"Welch's t-test over seeds, α = {alpha:g}"
    elif not tested.any():
        basis = "means only (fewer than two seeds or no spread): not a statistical claim"
    else:
        basis = f"Welch's t-test where there are seeds (α = {alpha:g}), means elsewhere"
    held = int(table["holds"].sum())
    status = HOLDS if held == len(table) else FAILS
    reason = f"holds at {held} of {len(table)} ratios"
    return ClaimCheck(claim.text, status, basis, reason, table)


def check_claims(reps: pd.DataFrame, metric: Metric, alpha: float = ALPHA) -> list[ClaimCheck]:
    return [check_claim(claim, reps, metric, alpha) for claim in CLAIMS]
