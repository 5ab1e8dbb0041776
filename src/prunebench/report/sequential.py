"""Sequential decisions for `sweep --until-decided`: seeds added only where a question is open.

A question is (setup, criterion, ratio, budget level). Looks happen after each round: look 1 at
the configured seeds (S0 of them), look j at S0 + j - 1 seeds, at most K (`--max-seeds`). At a
look, every comparison an open question needs (its best contender against each other
contender, as in decisions.py) is judged with the report's fixed-sample interval at the look's
nominal level (below), Holm-corrected over the comparisons judged at that look, each counted once per
variant pair its representatives were picked from. A comparison once decided (better, or
equivalent) stays decided: later seeds do not reopen it.

Error rates under optional stopping: a group-sequential design over the looks at 2..K seeds
(report/group_sequential.py): the boundaries spend alpha t^4 by information fraction t = s / K
(nothing at one seed, alpha/81 at 2 of 6), computed exactly for the correlation of nested sums
of seeds, and each look judges with the report's fixed-sample interval at the boundary's nominal
level ("significance level approach", Jennison & Turnbull 2000, sec. 3.8). Holm's step-down runs
on sequential p-values (the total alpha at which the look rejects): the j-th comparison of m
gets the look's level for alpha / (m - j + 1), as the group-sequential Holm procedure of Ye,
Li, Liu & Yao (Stat. Med. 2013) and the graphical approach of Maurer & Bretz (2013) do.

Racing: a regime that a decided comparison found worse than another at a question gets no more
seeds there. Futility (non-binding): a question whose open comparisons K seeds would decide with
predictive probability below FUTILITY (flat prior, the variance parts as estimated now;
Spiegelhalter, Freedman & Blackburn 1986) gets no more seeds either; it stays open, and says
so. The boundaries are computed as if nothing ever stopped for futility, and stopping without
a claim cannot make a false one, so neither rule raises the error rates. A question is decided
when its best contender is better than or equivalent to every other contender (dropped regimes
were beaten on the way), or when one contender is left.

Every look is derived only from stored rows (seeds beyond a look's are ignored), so a killed
sweep replays the same looks and continues with the same decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from prunebench.outputs import write_file
from prunebench.report.analysis import summarize
from prunebench.report.candidates import Candidate, advantage, from_summary
from prunebench.report.decisions import representatives
from prunebench.report.group_sequential import nominal, sequential_p
from prunebench.report.prepare import Metric, final_runs, metric_for
from prunebench.report.uncertainty import Spread
from prunebench.report.verdicts import (
    A_BETTER,
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    ONLY_ONE,
    TIED,
    UNDECIDED,
    Comparison,
    judge,
    margin_for,
)

SETTINGS_FILE = "until_decided.json"  # in the results directory: the design, written once
FUTILITY = 0.1  # a question stops when K seeds would decide it with less chance than this
# The sequential method, stored with the design: looks made by another method are never
# replayed or continued with this one's boundaries (their error rates would not hold).
METHOD = "exact group-sequential boundaries, alpha t^4 spending, futility 0.1"
EARLIER_METHOD = "union bound, weights (s-2)^3"  # designs stored before the method was recorded


@dataclass(frozen=True)
class Design:
    """What `--until-decided` was asked for; stored so that every later look and the report
    replay the same design."""

    first_seeds: tuple[int, ...]
    max_seeds: int
    alpha: float = 0.05
    margin: float | None = None  # pp of accuracy / % of perplexity, as --margin
    method: str = METHOD

    @property
    def current(self) -> bool:
        """Whether this version's method made the design's looks."""
        return self.method == METHOD

    @property
    def extra_seeds(self) -> list[int]:
        """The seeds rounds add, in order."""
        start = max(self.first_seeds) + 1
        return list(range(start, start + self.max_seeds - len(self.first_seeds)))

    def look(self, seeds: int) -> Look:
        """The look at `seeds` seeds: its group-sequential boundary (verdicts.Boundary)."""
        return Look(len(self.first_seeds), self.max_seeds, seeds)

    def look_alpha(self, seeds: int, alpha=None):
        """The nominal level of the look at `seeds` seeds when the design spends `alpha` (the
        design's own by default; scalar or array)."""
        return self.look(seeds).nominal(self.alpha if alpha is None else alpha)

    def save(self, directory: Path) -> None:
        text = json.dumps({**self.__dict__, "first_seeds": list(self.first_seeds)})
        write_file(Path(directory) / SETTINGS_FILE, text.encode())

    @classmethod
    def load(cls, directory: Path) -> Design | None:
        path = Path(directory) / SETTINGS_FILE
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        method = raw.get("method", EARLIER_METHOD)
        return cls(tuple(raw["first_seeds"]), raw["max_seeds"], raw["alpha"], raw["margin"], method)


def earlier_method_note(design: Design) -> str:
    """Why a stored design's sequential decisions are not shown."""
    return (
        f"the --until-decided looks of this directory were made by an earlier sequential method "
        f"({design.method}); their decisions are not replayed with this version's boundaries "
        "(the fixed-sample decisions below read every row)"
    )


@dataclass(frozen=True)
class Look:
    """verdicts.Boundary of the look at `seeds` seeds of a design whose first round has
    `first` seeds and which stops at `most` (report/group_sequential.py computes it)."""

    first: int
    most: int
    seeds: int

    def nominal(self, alpha):
        """The look's nominal level when the design spends `alpha` (scalar or array)."""
        return nominal(self.first, self.most, self.seeds, alpha)

    def sequential_p(self, p):
        """The smallest total alpha at which this look rejects p-value `p`."""
        return sequential_p(self.first, self.most, self.seeds, p)


Key = tuple[str, str, float]  # setup, criterion, ratio
Question = tuple[str, str, float, str | None]  # ... and budget: the label whose epochs it is


def futile(spread: Spread, margin: float, design: Design):
    """Whether the chance that K seeds decide (better, or equivalent) is below FUTILITY, as
    predicted from the estimate now (vectorised over the spread's leading axes)."""
    if spread.seeds < 2 or spread.seeds >= design.max_seeds:
        return np.zeros(np.shape(spread.mean), dtype=bool)
    return predicted_decision(spread, margin, design) < FUTILITY


def predicted_decision(spread: Spread, margin: float, design: Design):
    """Predictive probability (flat prior; Spiegelhalter, Freedman & Blackburn 1986) that the
    look at K seeds calls the difference better or equivalent: its estimate is predicted as
    N(estimate now, Var now - Var at K), its interval as the one at K seeds at the last look's
    level with the variance parts as estimated now."""
    most = design.max_seeds
    half = np.asarray(spread.half_width(design.look_alpha(most), most), dtype=float)
    sd = np.sqrt(np.maximum(np.asarray(spread.var - spread.projected_var(most), float), 1e-30))
    mean = np.asarray(spread.mean, dtype=float)
    needed = np.maximum(half, margin)
    better = special.ndtr((mean - needed) / sd) + special.ndtr((-mean - needed) / sd)
    room = np.maximum(margin - half, 0.0)
    equivalent = np.where(
        room > 0, special.ndtr((room - mean) / sd) - special.ndtr((-room - mean) / sd), 0.0
    )
    return better + equivalent


@dataclass
class Verdict:
    """One question's state after the looks so far."""

    question: Question
    status: str = UNDECIDED  # BETTER, TIED or UNDECIDED
    recommended: str | None = None
    seeds: int = 0  # seeds its contenders have at the last look
    decided_at: int | None = None  # seeds when decided
    comparisons: list[Comparison] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # regime -> "beaten by X at s seeds"
    contenders: list[str] = field(default_factory=list)  # regimes still in contention
    why_open: str = ""
    metric: Metric | None = None
    stopped: bool = False  # futile: no more seeds (see the module doc)
    budget: float | None = None  # the level's epochs (at the last look it was asked)


@dataclass
class Rounds:
    """The looks replayed from stored rows: per question its verdict; what the next round must
    run ((template run id, seed) pairs), empty when nothing is left to run."""

    verdicts: dict[Question, Verdict]
    needs: list[tuple[str, int]]
    looks: int
    seeds: int  # seeds of the last look
    finished: bool
    max_seeds: int = 0


def _candidates(finals: pd.DataFrame, metric: Metric) -> dict[float, list[Candidate]]:
    out: dict[float, list[Candidate]] = {}
    for _, row in summarize(finals).iterrows():
        if row["n"] > 0:
            out.setdefault(float(row["ratio"]), []).append(from_summary(row))
    return out


def _levels(cands: list[Candidate]) -> dict[str | None, float | None]:
    """Budget levels: the epochs of each candidate cheaper than the dearest, keyed by the
    first label (cheapest, then by name) at those epochs, so that a question keeps its identity
    when added seeds move the mean epochs; None: no limit."""
    levels: dict[str | None, float | None] = {}
    dearest = max(c.epochs for c in cands)
    for c in sorted(cands, key=lambda c: (c.epochs, c.label)):
        if c.epochs < dearest and c.epochs not in levels.values():
            levels[c.label] = c.epochs
    return {**levels, None: None}


class _Replay:
    def __init__(self, finals: pd.DataFrame, design: Design) -> None:
        self.design = design
        self.finals = finals[~finals["is_random"]]
        self.pairs: dict[tuple, Comparison] = {}  # (setup, criterion, ratio, a, b) -> decided
        self.futile: set[tuple] = set()  # open comparisons K seeds would not decide
        self.verdicts: dict[Question, Verdict] = {}
        self.seeds_of: dict[tuple, int] = {}  # (setup, criterion, ratio, label) -> seeds given
        self.templates: dict[tuple, str] = {}  # same key -> a run id of that variant
        for row in self.finals.itertuples():
            key = (row.setup, row.criterion, float(row.ratio), row.label)
            if row.seed in design.first_seeds:  # rounds add seeds to first-round runs
                self.templates.setdefault(key, row.run_id)
            self.seeds_of[key] = len(design.first_seeds)
        self.regimes: dict[Key, dict[str, str]] = {}  # label -> regime, fixed by the grid
        for row in self.finals.itertuples():
            self.regimes.setdefault((row.setup, row.criterion, float(row.ratio)), {})[row.label] = (
                row.regime
            )
        self.cands: dict[Key, list[Candidate]] = {}  # this look's candidates, made once a look
        self.current: set[Question] = set()  # the questions this look's budget levels ask

    def allowed(self) -> pd.DataFrame:
        first = self.design.first_seeds
        extra = self.design.extra_seeds
        keys = list(zip(self.finals["setup"], self.finals["criterion"],
                        self.finals["ratio"].astype(float), self.finals["label"], strict=True))  # fmt: skip
        ok = [
            seed in first or seed in extra[: self.seeds_of[k] - len(first)]
            for k, seed in zip(keys, self.finals["seed"], strict=True)
        ]
        return self.finals[ok]

    def look(self, seeds: int) -> None:
        """Judge every open question at this look; freeze what is decided; race."""
        level = self.design.look_alpha(seeds)
        rows = self.allowed()
        wanted: dict[tuple, tuple[Candidate, Candidate, int]] = {}
        self.cands = {}
        self.current = set()
        for (setup, criterion), group in rows.groupby(["setup", "criterion"], sort=True):
            metric = metric_for(group["metric"].iloc[0])
            for ratio, cands in _candidates(group, metric).items():
                self.cands[(setup, criterion, ratio)] = cands
                for label, budget in _levels(cands).items():
                    q = (setup, criterion, ratio, label)
                    v = self.verdicts.setdefault(q, Verdict(q, metric=metric))
                    self.current.add(q)
                    if v.status != UNDECIDED:
                        continue
                    v.budget = budget
                    self._contend(v, cands, metric, wanted)
        if wanted and level > 0:
            self._judge(wanted, seeds)
        for q in self.current:
            v = self.verdicts[q]
            if v.status == UNDECIDED:
                self._settle(v, seeds)

    def _reps(self, v: Verdict, cands: list[Candidate], metric: Metric) -> list[Candidate]:
        level = v.budget
        affordable = [c for c in cands if level is None or c.epochs <= level]
        reps = representatives(affordable, metric)
        return sorted((c for r, c in reps.items() if r not in v.dropped),
                      key=lambda c: (-metric.score(c.mean), c.epochs, c.label))  # fmt: skip

    def _contend(self, v, cands, metric, wanted) -> None:
        ordered = self._reps(v, cands, metric)
        v.contenders = [c.regime for c in ordered]
        v.recommended = ordered[0].label if ordered else None
        v.seeds = min((len(c.values) for c in ordered), default=0)
        setup, criterion, ratio, _ = v.question
        by_regime = {}
        for c in cands:
            by_regime[c.regime] = by_regime.get(c.regime, 0) + 1
        for other in ordered[1:]:
            key = (setup, criterion, ratio, ordered[0].label, other.label)
            if self._decided(key) is None:
                times = by_regime[ordered[0].regime] * by_regime[other.regime]
                wanted[key] = (ordered[0], other, times, metric)

    def _decided(self, key: tuple) -> Comparison | None:
        if key in self.pairs:
            return self.pairs[key]
        flipped = (*key[:3], key[4], key[3])
        return self.pairs[flipped].flipped() if flipped in self.pairs else None

    def _judge(self, wanted: dict, seeds: int) -> None:
        """One Holm family per (setup, criterion), as the report's, on this look's boundary
        (Holm on the sequential p-values; see the module doc)."""
        boundary = self.design.look(seeds)
        families: dict[tuple, list[tuple]] = {}
        for key in wanted:
            families.setdefault(key[:2], []).append(key)
        for keys in families.values():
            metric = wanted[keys[0]][3]
            spreads = [advantage(wanted[k][0], wanted[k][1], metric) for k in keys]
            bound = 1.0 if metric.higher_is_better else None
            margin = margin_for(metric, self.design.margin)
            pairs = [(k[2], k[3], k[4]) for k in keys]
            times = [wanted[k][2] for k in keys]
            judged = judge(spreads, pairs, margin, self.design.alpha, bound, None, times, boundary)
            for key, c, spread in zip(keys, judged, spreads, strict=True):
                if c.outcome != INCONCLUSIVE:
                    self.pairs[key] = c
                elif spread.decides and bool(futile(spread, margin, self.design)):
                    self.futile.add(key)

    def _settle(self, v: Verdict, seeds: int) -> None:
        """Racing and the question's status from the decided comparisons."""
        setup, criterion, ratio, _ = v.question
        regimes = self._regime_of(setup, criterion, ratio)
        labels = self._current_labels(v)
        for a in labels:
            for b in labels:
                c = self._decided((setup, criterion, ratio, a, b))
                if c is not None and c.outcome == A_BETTER and regimes[b] in v.contenders:
                    v.dropped.setdefault(regimes[b], f"beaten by {a} at {c.seeds} seeds")
        v.contenders = [r for r in v.contenders if r not in v.dropped]
        rec = next((lab for lab in labels if regimes[lab] in v.contenders), None)
        v.recommended = rec
        if rec is not None and len(labels) == 1:  # nothing else fits this budget
            v.status, v.decided_at, v.why_open = ONLY_ONE, seeds, ""
            return
        others = [lab for lab in labels if lab != rec and regimes[lab] in v.contenders]
        comps = [self._decided((setup, criterion, ratio, rec, o)) for o in others]
        shown = [self._decided((setup, criterion, ratio, rec, o)) for o in labels if o != rec]
        v.comparisons = [c for c in shown if c is not None]
        if rec is not None and all(c is not None and c.outcome in (A_BETTER, EQUIVALENT)
                                   for c in comps):  # fmt: skip
            v.status = TIED if any(c.outcome == EQUIVALENT for c in comps) else BETTER
            v.decided_at = seeds
            v.why_open = ""
        elif rec is not None:
            open_ = [o for o, c in zip(others, comps, strict=True) if c is None]
            v.why_open = f"open against {', '.join(open_)}"
            if all((setup, criterion, ratio, rec, o) in self.futile for o in open_):
                v.stopped = True
                v.why_open += (f": {self.design.max_seeds} seeds would decide it with less than "
                               f"{FUTILITY:.0%} chance")  # fmt: skip

    def _regime_of(self, setup, criterion, ratio) -> dict[str, str]:
        return self.regimes.get((setup, criterion, ratio), {})

    def _current_labels(self, v: Verdict) -> list[str]:
        """The question's representatives, best mean first (as at the last look)."""
        setup, criterion, ratio, _ = v.question
        level = v.budget
        metric = v.metric
        cands = self.cands.get((setup, criterion, ratio), [])
        affordable = [c for c in cands if level is None or c.epochs <= level]
        reps = representatives(affordable, metric)
        ordered = sorted(reps.values(), key=lambda c: (-metric.score(c.mean), c.epochs, c.label))
        return [c.label for c in ordered]

    def shown(self) -> dict[Question, Verdict]:
        """The questions of the last look, and those decided at earlier ones (a budget level
        whose label stopped being one is no question any more, unless it was decided)."""
        return {
            q: v for q, v in self.verdicts.items() if q in self.current or v.status != UNDECIDED
        }

    def needs(self) -> list[tuple]:
        """(setup, criterion, ratio, label) of every variant whose regime is still in
        contention for an open question: each gets the next seed."""
        out = set()
        for (setup, criterion, ratio, _), v in self.shown().items():
            if v.status != UNDECIDED or v.stopped:
                continue
            for key in self.templates:
                if (
                    key[:3] == (setup, criterion, ratio)
                    and self._regime_of(setup, criterion, ratio).get(key[3]) in v.contenders
                ):
                    out.add(key)
        return sorted(out)


def replay(results: pd.DataFrame, design: Design) -> Rounds:
    """Every look the stored rows allow, from the first round on (see the module doc)."""
    finals = final_runs(results)
    state = _Replay(finals, design)
    first = len(design.first_seeds)
    seeds = first
    for seeds in range(first, design.max_seeds + 1):
        state.look(seeds)
        needs = state.needs()
        if not needs or seeds == design.max_seeds:
            return Rounds(state.shown(), [], seeds - first + 1, seeds, True, design.max_seeds)
        seed = design.extra_seeds[seeds - first]
        wanted = [(state.templates[k], seed) for k in needs]
        have = _variant_seeds(finals, needs)
        if not all((k, seed) in have for k in needs):
            return Rounds(state.shown(), wanted, seeds - first + 1, seeds, False, design.max_seeds)
        for k in needs:
            state.seeds_of[k] += 1
    return Rounds(state.shown(), [], seeds - first + 1, seeds, True, design.max_seeds)


def _variant_seeds(finals: pd.DataFrame, keys: list[tuple]) -> set[tuple]:
    wanted = set(keys)
    out = set()
    for row in finals.itertuples():
        key = (row.setup, row.criterion, float(row.ratio), row.label)
        if key in wanted:
            out.add((key, int(row.seed)))
    return out
