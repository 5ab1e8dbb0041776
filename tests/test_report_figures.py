"""Figures: readable in grayscale (each line its own marker AND line style), labelled axes."""

from __future__ import annotations

import pandas as pd
from matplotlib.container import ErrorbarContainer
from matplotlib.lines import Line2D

from prunebench.report import figures
from prunebench.report.prepare import METRICS


def lines_frame(labels: list[tuple[str, str]], ratios=(0.5, 0.9, 0.98)) -> pd.DataFrame:
    rows = [
        {"label": label, "regime": regime, "ratio": r, "mean": 0.9 - i / 100 - r / 10, "std": 0.01}
        for i, (label, regime) in enumerate(labels)
        for r in ratios
    ]
    return pd.DataFrame(rows)


def data_lines(fig) -> list[Line2D]:
    """The line of each legend entry with data points (errorbar containers unwrapped)."""
    handles, labels = fig.axes[0].get_legend_handles_labels()
    lines = [h.lines[0] if isinstance(h, ErrorbarContainer) else h for h in handles]
    return [ln for ln, label in zip(lines, labels, strict=True) if not label.startswith("dense")]


def test_every_line_has_its_own_marker_and_style():
    labels = [("one_shot", "one_shot"), ("constant", "constant"), ("geometric (rate=0.2)", "geometric"),
              ("geometric (rate=0.3)", "geometric"), ("hybrid", "hybrid"), ("agp", "agp"),
              ("custom", "something_new")]  # fmt: skip
    base = pd.DataFrame({"ratio": [0.5, 0.9, 0.98], "mean": [0.3, 0.2, 0.1], "std": [0.0] * 3})
    fig = figures.regime_lines(lines_frame(labels), METRICS["top1"], "t", 0.99, base)
    lines = data_lines(fig)
    pairs = [(ln.get_marker(), str(ln.get_linestyle())) for ln in lines]
    assert len(lines) == len(labels) + 1  # + random baseline
    assert len(set(pairs)) == len(pairs)
    markers = [ln.get_marker() for ln in lines]
    assert len(set(markers)) == len(markers)  # distinct even without the line style
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0] == "dense (99.00%)"
    assert legend[1] == "random criterion (best regime), off scale: value written"
    assert legend[2:5] == ["one_shot", "constant", "geometric (rate=0.2)"]  # the paper's order
    ax = fig.axes[0]
    assert ax.get_ylabel() == "test top-1 accuracy (%)"
    assert ax.get_xlabel().startswith("pruning ratio (%")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["50", "90", "98"]


def test_far_random_baseline_is_pinned_and_labelled():
    base = pd.DataFrame({"ratio": [0.5, 0.9], "mean": [0.10, 0.05], "std": [0.0, 0.0]})
    lines = lines_frame([("one_shot", "one_shot")], ratios=(0.5, 0.9))
    fig = figures.regime_lines(lines, METRICS["top1"], "t", None, base)
    ax = fig.axes[0]
    low, _ = ax.get_ylim()
    assert low > 50  # the regime line keeps its scale
    notes = sorted(t.get_text() for t in ax.texts)
    assert notes == ["10.0", "5.0"]


def test_perplexity_axis_says_lower_is_better():
    fig = figures.regime_lines(lines_frame([("one_shot", "one_shot")]), METRICS["ppl"], "t")
    assert fig.axes[0].get_ylabel() == "test perplexity (lower is better)"


def test_budget_and_ablation_panels():
    summary = pd.DataFrame({
        "label": ["one_shot", "geometric (patience=1)", "geometric (patience=3)"],
        "regime": ["one_shot", "geometric", "geometric"], "ratio": [0.9] * 3,
        "epochs_mean": [10.0, 20.0, 40.0], "epochs_std": [1.0, 2.0, 3.0],
        "mean": [0.8, 0.85, 0.9], "std": [0.01, 0.01, 0.01],
    })  # fmt: skip
    fig = figures.retraining_budget(summary, METRICS["top1"], [0.9])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "total fine-tuning epochs (all steps)"
    geo = next(ln for ln in ax.get_lines() if list(ln.get_xdata()) == [20.0, 40.0])
    assert list(geo.get_ydata()) == [85.0, 90.0]  # variants joined in order of epochs
    rows = pd.DataFrame({"ratio": [0.9, 0.9], "line": ["geometric"] * 2, "regime": ["geometric"] * 2,
                         "x": [1.0, 3.0], "mean": [0.85, 0.9], "std": [0.0, 0.0]})  # fmt: skip
    fig = figures.ablation(rows, METRICS["top1"], "patience", "Patience ablation", False)
    assert fig.axes[0].get_title() == "pruning ratio 90 %"
    assert figures.render(fig, "svg").startswith(b"<?xml")
    assert figures.render(fig, "png").startswith(b"\x89PNG")
