"""One decision per (criterion, ratio, budget), and every comparison behind it, made once.

The recommendation table and its sentences, the budget table, the claims check, the figures'
highlights and `prunebench advise` all print these objects; none of them compares anything
itself, so they cannot disagree.

At a ratio and a retraining budget (mean total fine-tuning epochs), the candidates are the
variants that fit the budget; each regime is represented by its best affordable variant (best
mean, then fewer epochs), and the recommended one is the best of those. It is compared with
every other regime's representative (verdicts.py); since the representatives are picked by
their test means, each comparison counts as every pair of variants it was picked from
(k_a x k_b) in the multiple-comparison family, so the choice does not peek. Its status:

    better        better than every other regime
    equivalent    better than or equivalent to each, equivalent to at least one; the cheapest
                  equivalent regime is named as the cheaper alternative
    inconclusive  at least one comparison cannot tell yet (with the seeds it would take), or
                  the recommended variant diverged (NaN) on some seed: a failure of that
                  regime, shown, and never hidden by leaving the seed out

All comparisons a criterion's decisions, the paper's claims and any extra pairs a section asks
for (distillation.py: each distilled variant against its plain twin) form ONE Holm family, so a
comparison has the same interval wherever it is printed. An extra pair was not picked by its
test mean, so it counts once in the family.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from prunebench.report.advice import decision_text, nothing_fits_text, over_budget_text
from prunebench.report.analysis import best_by_ratio
from prunebench.report.candidates import Candidate, advantage, from_summary
from prunebench.report.claims import ClaimCheck, check_claims, claim_pairs
from prunebench.report.prepare import Metric
from prunebench.report.verdicts import (
    A_BETTER,
    B_BETTER,
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    NOTHING_FITS,
    ONLY_ONE,
    TIED,
    UNDECIDED,
    Comparison,
    judge,
)

SELECTION = "representative: the best test mean among a regime's variants, every variant pair counted in the Holm family"


@dataclass(frozen=True)
class Decision:
    criterion: str
    ratio: float
    budget: float | None  # epochs; None: no limit
    recommended: Candidate | None
    comparisons: tuple[Comparison, ...]  # a = the recommended, b = another regime's best
    status: str
    deciding: Comparison | None  # the comparison the status rests on (shown in tables)
    alternative: Candidate | None  # cheaper and equivalent
    more_seeds: int | None
    more_seeds_note: str
    text: str


def representatives(cands: list[Candidate], metric: Metric) -> dict[str, Candidate]:
    """regime -> its best candidate (best mean, then fewer epochs, then label)."""
    best: dict[str, Candidate] = {}
    for c in sorted(cands, key=lambda c: (-metric.score(c.mean), c.epochs, c.label)):
        best.setdefault(c.regime, c)
    return best


def _order(best: dict[str, Candidate], metric: Metric) -> list[Candidate]:
    return sorted(best.values(), key=lambda c: (-metric.score(c.mean), c.epochs, c.label))


@dataclass
class Verdicts:
    """Everything judged for one setup and criterion."""

    criterion: str
    metric: Metric
    alpha: float
    margin: float
    candidates: dict[float, list[Candidate]]
    comparisons: dict[tuple[float, str, str], Comparison] = field(default_factory=dict)
    decisions: dict[tuple[float, float | None], Decision] = field(default_factory=dict)
    claims: list[ClaimCheck] = field(default_factory=list)
    family: int = 0
    min_effect: float | None = None  # advantage units; seeds advice aims at it
    extra: list[tuple[float, str, str]] = field(default_factory=list)  # (ratio, a, b) to judge too

    def comparison(self, ratio: float, a: str, b: str) -> Comparison:
        """A vs B at `ratio`, whichever way round it was computed."""
        if (ratio, a, b) in self.comparisons:
            return self.comparisons[(ratio, a, b)]
        return self.comparisons[(ratio, b, a)].flipped()

    def budget_levels(self, ratio: float) -> list[float]:
        """The distinct epoch costs at a ratio: every budget between two of them decides alike."""
        return sorted({c.epochs for c in self.candidates.get(ratio, [])})

    def decision(self, ratio: float, budget: float | None = None) -> Decision:
        """The decision at `ratio` for a budget of `budget` epochs (None: no limit)."""
        levels = self.budget_levels(ratio)
        if budget is None or (levels and budget >= levels[-1]):
            return self.decisions[(ratio, None)]
        fitting = [level for level in levels if level <= budget]
        if not fitting:
            return self._nothing_fits(ratio, budget, levels[0] if levels else None)
        decided = self.decisions[(ratio, fitting[-1])]
        over = [c for c in self.candidates[ratio] if c.epochs > budget]
        text = over_budget_text(decided.text, fitting[-1], budget, over)
        return replace(decided, budget=budget, text=text)

    def frontier(self, ratio: float) -> list[Decision]:
        """The budget levels at which the recommendation changes, cheapest first."""
        out: list[Decision] = []
        for level in self.budget_levels(ratio):
            d = self.decision(ratio, level)
            if d.recommended is not None and (
                not out or out[-1].recommended.label != d.recommended.label
            ):
                out.append(d)
        return out

    def _nothing_fits(self, ratio: float, budget: float, cheapest: float | None) -> Decision:
        text = nothing_fits_text(ratio, budget, cheapest)
        return Decision(self.criterion, ratio, budget, None, (), NOTHING_FITS, None, None,
                        None, "", text)  # fmt: skip

    # ------------------------------------------------------------------ building
    def variants(self, c: Candidate) -> int:
        """How many variants of c's regime were run at c's ratio (its representative was
        picked from them)."""
        return sum(o.regime == c.regime for o in self.candidates[c.ratio])

    def _affordable(self, ratio: float, level: float | None) -> dict[str, Candidate]:
        cands = self.candidates[ratio]
        if level is not None:
            cands = [c for c in cands if c.epochs <= level]
        return representatives(cands, self.metric)

    def _points(self) -> list[tuple[float, float | None]]:
        points = []
        for ratio in sorted(self.candidates):
            levels = self.budget_levels(ratio)
            points += [(ratio, level) for level in levels[:-1]] + [(ratio, None)]
        return points

    def build(self) -> Verdicts:
        wanted: dict[tuple[float, str, str], tuple[Candidate, Candidate, int]] = {}

        def want(ratio: float, a: Candidate, b: Candidate, times: int) -> None:
            if (ratio, a.label, b.label) not in wanted and (ratio, b.label, a.label) not in wanted:
                wanted[(ratio, a.label, b.label)] = (a, b, times)

        def picked(ratio: float, a: Candidate, b: Candidate) -> None:
            want(ratio, a, b, self.variants(a) * self.variants(b))

        for ratio, level in self._points():
            ordered = _order(self._affordable(ratio, level), self.metric)
            for other in ordered[1:]:
                picked(ratio, ordered[0], other)
        best = {ratio: self._affordable(ratio, None) for ratio in self.candidates}
        for ratio, by_regime in best.items():
            for a, b in claim_pairs(by_regime, ratio, self.metric):
                picked(ratio, a, b)
        for ratio, a, b in self.extra:
            by_label = {c.label: c for c in self.candidates[ratio]}
            want(ratio, by_label[a], by_label[b], 1)
        keys = list(wanted)
        spreads = [advantage(a, b, self.metric) for a, b, _ in wanted.values()]
        bound = 1.0 if self.metric.higher_is_better else None  # accuracies are fractions
        times = [times for _, _, times in wanted.values()]
        judged = judge(spreads, keys, self.margin, self.alpha, bound, self.min_effect, times)
        self.comparisons = dict(zip(keys, judged, strict=True))
        self.family = judged[0].family if judged else 0
        for ratio, level in self._points():
            self.decisions[(ratio, level)] = self._decide(ratio, level)
        self.claims = check_claims(best, self.comparison, self.metric)
        return self

    def _decide(self, ratio: float, level: float | None) -> Decision:
        ordered = _order(self._affordable(ratio, level), self.metric)
        rec = ordered[0]
        comps = tuple(self.comparison(ratio, rec.label, other.label) for other in ordered[1:])
        others = {c.label: c for c in ordered[1:]}
        alternative = None
        more, note = 0, ""
        if not comps:
            status, deciding = ONLY_ONE, None
        elif open_ := [c for c in comps if c.outcome in (INCONCLUSIVE, B_BETTER)]:
            status, deciding = UNDECIDED, open_[0]
            needs = [c.more_seeds for c in open_]
            more = None if None in needs else max(needs)
            note = next((c.more_seeds_note for c in open_ if c.more_seeds_note), "")
        elif tied := [c for c in comps if c.outcome == EQUIVALENT]:
            status = TIED
            deciding = min(tied, key=lambda c: (others[c.b].epochs, c.b))
            cheaper = [others[c.b] for c in tied if others[c.b].epochs < rec.epochs]
            alternative = min(cheaper, key=lambda c: (c.epochs, c.label)) if cheaper else None
        else:
            assert all(c.outcome == A_BETTER for c in comps)
            status, deciding = BETTER, comps[0]
        if rec.failed and status in (BETTER, TIED):
            status, more = UNDECIDED, None
            note = f"{rec.label} diverged on {len(rec.failed)} of {len(rec.failed) + len(rec.values)} seeds"
        text = decision_text(ratio, level, rec, status, deciding, alternative, more, note,
                             self.metric, self.margin, others)  # fmt: skip
        return Decision(self.criterion, ratio, level, rec, comps, status, deciding, alternative,
                        more, note, text)  # fmt: skip


def decide(
    summary: pd.DataFrame,
    metric: Metric,
    alpha: float,
    margin: float,
    min_effect: float | None = None,
    extra: dict[str, list[tuple[float, str, str]]] | None = None,
) -> dict[str, Verdicts]:
    """criterion -> its Verdicts, from one setup's summary rows (random criterion left out);
    `extra`: criterion -> further (ratio, a, b) label pairs to judge in its family."""
    out = {}
    rows = summary[~summary["is_random"] & summary["mean"].notna()]
    for criterion, group in rows.groupby("criterion", sort=True):
        cands: dict[float, list[Candidate]] = {}
        for _, row in best_by_ratio(group, metric).iterrows():
            cands.setdefault(float(row["ratio"]), []).append(from_summary(row))
        out[str(criterion)] = Verdicts(
            str(criterion), metric, alpha, margin, cands, min_effect=min_effect,
            extra=(extra or {}).get(str(criterion), []),
        ).build()  # fmt: skip
    return out
