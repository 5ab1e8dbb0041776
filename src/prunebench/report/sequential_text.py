"""What `sweep --until-decided` prints and the report shows: per question the sequential decision
with the seeds it took and its interval, or why it is still open (report/sequential.py decides;
this module only words it)."""

from __future__ import annotations

import pandas as pd

from prunebench.report.advice import describe
from prunebench.report.document import Bullets, Paragraph, Section
from prunebench.report.prepare import pct
from prunebench.report.sequential import Design, Question, Rounds, replay
from prunebench.report.verdicts import BETTER, ONLY_ONE, TIED


def question_lines(rounds: Rounds, stop: str = "") -> list[str]:
    """Per question: the decision with the seeds it took and its sequential interval, or why
    it is still open (and what it would take)."""
    lines = []

    def order(q: Question):
        budget = rounds.verdicts[q].budget
        return q[0], q[1], q[2], budget is None, budget or 0, q[3] or ""

    for q in sorted(rounds.verdicts, key=order):
        v = rounds.verdicts[q]
        setup, criterion, ratio, label = q
        where = f"{setup}, {criterion}, {pct(ratio)}" + (
            f" within {v.budget:g} epochs ({label}'s)" if label is not None else ""
        )
        if v.status == ONLY_ONE:
            lines.append(f"{where}: only {v.recommended} fits; nothing to compare")
            continue
        shown = "; ".join(f"vs {c.b}: {c.outcome}, {describe(v.metric, c)} at {c.seeds} seeds"
                          for c in v.comparisons)  # fmt: skip
        if v.status in (BETTER, TIED):
            word = (
                "better than every other regime" if v.status == BETTER else "equivalent or better"
            )
            lines.append(f"{where}: {v.recommended} is {word}, decided at {v.decided_at} seeds "
                         f"(sequential: {shown})")  # fmt: skip
            continue
        if v.stopped:
            reason = v.why_open
        else:
            at_most = v.seeds >= rounds.max_seeds
            reason = f"{v.why_open or 'no comparison decided'}; " + (
                stop or ("--max-seeds reached" if at_most else "more seeds may decide it")
            )
        dropped = "; ".join(f"{r} {why}" for r, why in v.dropped.items())
        lines.append(
            f"{where}: open after {v.seeds} seeds ({reason}); best so far {v.recommended}"
            + (f"; dropped: {dropped}" if dropped else "")
            + (f"; decided so far: {shown}" if shown else "")
        )
    return lines


SEQUENTIAL_NOTE = (
    "These questions were decided by `sweep --until-decided`: seeds were added in rounds only "
    "where a question was open, so the fixed-sample intervals of the sections above looked at "
    "the data more than once. The decisions here are the sequential ones (alpha spent over at "
    "most K looks; report/sequential.py), each with the seeds it took and the interval it was "
    "decided on; act on these."
)


def sequential_section(results: pd.DataFrame, design: Design) -> Section:
    """The report's section for an --until-decided results directory."""
    rounds = replay(results, design)
    return Section("sequential", "Sequential decisions (sweep --until-decided)").add(
        Paragraph(SEQUENTIAL_NOTE), Bullets(question_lines(rounds))
    )
