"""`prunebench advise`: the report's decisions as terminal lines, without building the report.

The lines are the decisions' own sentences (the report's recommendation prints the same ones),
per setup and criterion, for every ratio or the one asked for, at a budget if one is given.
"""

from __future__ import annotations

from pathlib import Path

from prunebench.errors import PrunebenchError
from prunebench.report.advice import fmt_margin
from prunebench.report.build import check_settings, contexts
from prunebench.report.decisions import Decision
from prunebench.report.prepare import pct, reported_as
from prunebench.report.sanity import (
    chance_at,
    clearly_above_chance,
    collapsed_decision_text,
    sanity_warnings,
)
from prunebench.report.sequential import Design, earlier_method_note, replay
from prunebench.report.sequential_text import question_lines
from prunebench.report.verdicts import ALPHA
from prunebench.store.results import load_results

RATIO_TOLERANCE = 1e-6


def advise_decisions(
    directory: Path | str,
    ratio: float | None = None,
    budget: float | None = None,
    alpha: float = ALPHA,
    margin: float | None = None,
    min_effect: float | None = None,
    metric: str | None = None,
) -> list[tuple[str, str, list[Decision], str]]:
    """(setup, criterion, decisions, how) for every setup and non-random criterion; `metric`:
    an evaluation (eval.NAME) decided on instead of the test metric, as `report --metric`."""
    check_settings(alpha, margin, min_effect)
    if budget is not None and budget < 0:
        raise PrunebenchError(f"--budget must be >= 0 epochs, got {budget:g}")
    results = load_results(directory, outcomes=True)
    if metric is not None:
        results = reported_as(results, metric)
    out = []
    seen: set[float] = set()
    for ctx in contexts(results, alpha, margin, min_effect):
        for criterion, v in ctx.verdicts.items():
            seen |= set(v.candidates)
            ratios = [r for r in sorted(v.candidates)
                      if ratio is None or abs(r - ratio) < RATIO_TOLERANCE]  # fmt: skip
            if not ratios:
                continue
            how = (
                f"Holm over {v.family} comparisons, α = {alpha:g}, "
                f"margin {fmt_margin(ctx.metric, ctx.margin)}, seeds advice for a minimum "
                f"effect of {fmt_margin(ctx.metric, v.min_effect).lstrip('±')}"
            )
            out.append((ctx.setup, criterion, [v.decision(r, budget) for r in ratios], how))
    if not out:
        if not seen:
            raise PrunebenchError(
                f"'{directory}' holds no finished run with a non-random criterion"
            )
        known = ", ".join(pct(r) for r in sorted(seen))
        raise PrunebenchError(f"no finished runs at ratio {ratio:g}; ratios run: {known}")
    return out


def advise_lines(directory: Path | str, metric: str | None = None, **kwargs) -> list[str]:
    """What `prunebench advise` prints: the sanity warnings first, an --until-decided sweep's
    sequential decisions next (act on these), then per setup and criterion the decisions; where
    even the recommended regime is at chance, none is recommended."""
    df = load_results(directory)
    lines = [f"warning: {w}" for w in sanity_warnings(df, directory)]
    design = Design.load(Path(directory))
    if design is not None and not design.current:
        lines.append(f"warning: {earlier_method_note(design)}")
    elif design is not None:
        rounds = replay(load_results(directory, outcomes=True), design)
        on = "" if metric is None else ", on the test metric"
        lines.append(f"Sequential decisions (sweep --until-decided{on}; act on these):")
        lines += [f"  {line}" for line in question_lines(rounds)]
    for setup, criterion, decisions, how in advise_decisions(directory, metric=metric, **kwargs):
        on = "" if metric is None else f", on {metric}"
        lines.append(f"{setup}, {criterion} criterion ({how}{on}):")
        lines += [f"  {d.text if metric else _sane_text(d, df)}" for d in decisions]
    return lines


def _sane_text(d: Decision, df) -> str:
    """The decision, or where the recommended regime's test metric is at chance, a refusal to
    recommend (chance is known for the test metric only, not for evaluations)."""
    chance = chance_at(df, d.ratio)
    rec = d.recommended
    if rec is None or chance is None:
        return d.text
    metric = str(df["metric"].dropna().iloc[0]) if df["metric"].notna().any() else "top1"
    if clearly_above_chance(rec.mean, chance, metric != "ppl"):
        return d.text
    return collapsed_decision_text(d.ratio, metric, rec.mean, chance)
