"""Building the report from a results directory and writing report.html / report.md (+ figures).

The only input is the database (through `load_results`), so a report can be rebuilt at any time
and never depends on the memory of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import prunebench.report.figures as figs
import prunebench.report.overview as ov
import prunebench.report.sections as sc
import prunebench.report.studies as st
from prunebench.errors import PrunebenchError
from prunebench.outputs import write_file
from prunebench.report.adaptive_steps import adaptive_steps
from prunebench.report.advice import fmt_margin
from prunebench.report.analysis import main_criterion, representatives, summarize
from prunebench.report.decisions import decide
from prunebench.report.distillation import distillation, distilled, pairs
from prunebench.report.document import Document, Section
from prunebench.report.evaluations import evaluations
from prunebench.report.html import render_html
from prunebench.report.markdown import render_markdown
from prunebench.report.prepare import final_runs, metric_for, reported_as, unfinished_runs
from prunebench.report.sanity import sanity_warnings
from prunebench.report.sequential import Design, earlier_method_note
from prunebench.report.sequential_text import sequential_section
from prunebench.report.verdicts import ALPHA, margin_for, min_effect_for
from prunebench.store.results import database_path, load_results

FIGURE_FORMATS = ("png", "svg")


def check_settings(alpha: float, margin: float | None, min_effect: float | None = None) -> None:
    """One-line errors for settings out of range (the CLI exits with 2)."""
    if not 0 < alpha < 1:
        raise PrunebenchError(f"--alpha must be between 0 and 1, got {alpha:g}")
    if margin is not None and margin < 0:
        raise PrunebenchError(f"--margin must be >= 0, got {margin:g}")
    if min_effect is not None and min_effect <= 0:
        raise PrunebenchError(f"--min-effect must be > 0, got {min_effect:g}")


@dataclass
class ReportFiles:
    html: Path
    markdown: Path
    figures: list[Path] = field(default_factory=list)
    document: Document | None = None


def context(
    setup: str,
    prefix: str,
    finals: pd.DataFrame,
    alpha: float,
    margin: float | None,
    min_effect: float | None = None,
) -> sc.Context:
    """Everything the sections of one setup need, the decisions included (made once here)."""
    summary = summarize(finals, alpha)
    metric = metric_for(finals["metric"].iloc[0])
    criterion = main_criterion(finals)
    main = summary[(summary["criterion"] == criterion) & ~summary["is_random"]]
    margin_value = margin_for(metric, margin)
    return sc.Context(
        setup=setup,
        prefix=prefix,
        finals=finals,
        summary=summary,
        metric=metric,
        criterion=criterion,
        main=main,
        reps=representatives(main, metric),
        alpha=alpha,
        margin=margin_value,
        verdicts=decide(
            summary,
            metric,
            alpha,
            margin_value,
            min_effect_for(metric, min_effect, margin_value),
            extra=pairs(finals, summary),
        ),
    )


def contexts(
    results: pd.DataFrame, alpha: float, margin: float | None, min_effect: float | None = None
) -> list[sc.Context]:
    """One context per setup (model, dataset, structure) of `load_results(..., outcomes=True)`;
    `min_effect`: the difference the seeds advice aims at (pp of accuracy / % of perplexity)."""
    finals = final_runs(results)
    setups = sorted(finals["setup"].unique())
    return [
        context(setup, f"s{i + 1}-" if len(setups) > 1 else "",
                finals[finals["setup"] == setup], alpha, margin, min_effect)
        for i, setup in enumerate(setups)
    ]  # fmt: skip


def setup_sections(ctx: sc.Context) -> list[Section]:
    return [
        ov.overview(ctx),
        sc.comparison(ctx),
        sc.ratio_tables(ctx),
        sc.recommendation(ctx),
        st.budget(ctx),
        st.criteria(ctx),
        st.hybrid(ctx),
        st.ablation(ctx, "patience"),
        st.ablation(ctx, "step_size"),
        *([distillation(ctx)] if distilled(ctx) else []),
        *([section] if (section := evaluations(ctx)) is not None else []),
        ov.claims(ctx),
    ]


def build_document(
    results: pd.DataFrame,
    source: str,
    alpha: float = ALPHA,
    margin: float | None = None,
    min_effect: float | None = None,
    design: Design | None = None,
    directory: Path | str | None = None,
) -> Document:
    """The whole report as data, from `load_results(..., outcomes=True)` rows. `margin`: in
    percentage points of accuracy or percent of perplexity (default 0.1 / 1). `directory`: the
    results directory, whose checkpoints show layers reduced to nothing."""
    runs = results.drop_duplicates("run_id")
    status = runs["status"].fillna("unknown").value_counts()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(status.items()))
    intro = [f"Built from {source}: {len(runs)} runs ({counts or 'none'})."]
    intro += [f"WARNING: {line}." for line in sanity_warnings(results, directory)]  # issue 23
    sections: list[Section] = []
    margins = []
    for ctx in contexts(results, alpha, margin, min_effect):
        sections += setup_sections(ctx)
        if (steps := adaptive_steps(ctx, results)) is not None:
            sections.append(steps)
        margins.append(fmt_margin(ctx.metric, ctx.margin))
    if not sections:
        sections.append(
            Section("results", "Results", unavailable="no finished runs in the database")
        )
    margins = list(dict.fromkeys(margins))
    if design is not None and not design.current:
        intro.append(f"WARNING: {earlier_method_note(design)}.")
    elif design is not None:  # an --until-decided sweep: its sequential decisions come first
        sections.insert(0, sequential_section(results, design))
    sections += [ov.unfinished(unfinished_runs(results)), ov.method(alpha, margins)]
    return Document("prunebench report: which pruning regime?", intro, sections)


def write_report(
    directory: Path | str,
    out: Path | str | None = None,
    figure_format: str | None = None,
    alpha: float = ALPHA,
    margin: float | None = None,
    min_effect: float | None = None,
    metric: str | None = None,
) -> ReportFiles:
    """Write report.html (self-contained) and report.md to `out` (default DIRECTORY/report);
    `metric`: an evaluation (eval.NAME) reported and decided on instead of the test metric."""
    if figure_format is not None and figure_format not in FIGURE_FORMATS:
        raise PrunebenchError(f"--figures must be png or svg, not '{figure_format}'")
    check_settings(alpha, margin, min_effect)
    results = load_results(directory, outcomes=True)
    if metric is not None:
        results = reported_as(results, metric)
    doc = build_document(
        results,
        str(database_path(directory)),
        alpha,
        margin,
        min_effect,
        Design.load(Path(directory)),
        directory,
    )
    out = Path(out) if out is not None else Path(directory) / "report"
    images, written, links = {}, [], {}
    contents: dict[Path, bytes] = {}
    for block in doc.figures():
        images[block.name] = figs.render(block.figure, "png")
        if figure_format is not None:
            path = out / "figures" / f"{block.name}.{figure_format}"
            data = (
                images[block.name] if figure_format == "png" else figs.render(block.figure, "svg")
            )
            contents[path] = data
            written.append(path)
            links[block.name] = path.relative_to(out).as_posix()
    html = out / "report.html"
    contents[html] = render_html(doc, images).encode("utf-8")
    markdown = out / "report.md"
    contents[markdown] = render_markdown(doc, links).encode("utf-8")
    for path, data in contents.items():  # each written whole, or one line saying why not
        write_file(path, data)
    return ReportFiles(html, markdown, written, doc)
