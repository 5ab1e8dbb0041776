"""Figures: readable in grayscale (each line its own marker AND line style), labelled axes,
every regime inside the axes, confidence intervals as error bars, a visible dense reference."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.lines import Line2D

import prunebench.report.figures as figures
from prunebench.report import build_document
from prunebench.report.prepare import METRICS
from prunebench.store.database import Store
from prunebench.store.results import load_results
from report_db import add_run


def lines_frame(labels: list[tuple[str, str]], ratios=(0.5, 0.9, 0.98)) -> pd.DataFrame:
    rows = [
        {"label": label, "regime": regime, "ratio": r, "mean": 0.9 - i / 100 - r / 10,
         "ci_low": 0.89 - i / 100 - r / 10, "ci_high": 0.92 - i / 100 - r / 10}
        for i, (label, regime) in enumerate(labels)
        for r in ratios
    ]  # fmt: skip
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
    base = pd.DataFrame({"ratio": [0.5, 0.9, 0.98], "mean": [0.3, 0.2, 0.1]})
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
    base = pd.DataFrame({"ratio": [0.5, 0.9], "mean": [0.10, 0.05]})
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
        "mean": [0.8, 0.85, 0.9], "ci_low": [0.79, 0.84, 0.89], "ci_high": [0.81, 0.86, 0.91],
    })  # fmt: skip
    fig = figures.retraining_budget(summary, METRICS["top1"], [0.9])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "total fine-tuning epochs (all steps)"
    geo = next(ln for ln in ax.get_lines() if list(ln.get_xdata()) == [20.0, 40.0])
    assert list(geo.get_ydata()) == [85.0, 90.0]  # variants joined in order of epochs
    rows = pd.DataFrame({"ratio": [0.9, 0.9], "line": ["geometric"] * 2, "regime": ["geometric"] * 2,
                         "x": [1.0, 3.0], "mean": [0.85, 0.9]})  # fmt: skip
    fig = figures.ablation(rows, METRICS["top1"], "patience", "Patience ablation", False)
    assert fig.axes[0].get_title() == "pruning ratio 90 %"
    assert figures.render(fig, "svg").startswith(b"<?xml")
    assert figures.render(fig, "png").startswith(b"\x89PNG")


def test_error_bars_are_the_confidence_intervals():
    lines = lines_frame([("one_shot", "one_shot")], ratios=(0.5, 0.9))
    fig = figures.regime_lines(lines, METRICS["top1"], "t")
    container = next(c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer))
    segments = container.lines[2][0].get_segments()
    spans = sorted((seg[0][1], seg[1][1]) for seg in segments)
    expected = sorted(zip(lines["ci_low"] * 100, lines["ci_high"] * 100, strict=True))
    assert spans == [pytest.approx(e) for e in expected]


def points_inside(ax) -> list[tuple[str, float, float]]:
    """(label, x, y) of every plotted data point that lies outside the axes' limits."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    out = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            line = container.lines[0]
            for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
                if not (x0 < x < x1 and y0 < y < y1):
                    out.append((container.get_label(), x, y))
    return out


def test_single_ratio_database_shows_every_regime_inside_the_axes(tmp_path):
    """The offline LM demo runs one ratio: the regimes' side offsets must stay on the figure."""
    store = Store(tmp_path)
    for seed in (0, 1):
        for regime, top1 in {"one_shot": 0.9, "constant": 0.905, "geometric": 0.91,
                             "hybrid": 0.9}.items():  # fmt: skip
            add_run(store, regime, 0.9, seed, top1 + seed / 200, examples=200, dense=1.0)
    doc = build_document(load_results(tmp_path, outcomes=True), "db")
    block = doc.section("comparison").figures()[0]
    ax = block.figure.axes[0]
    labels = [c.get_label() for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert labels == ["one-shot", "constant step=0.1", "geometric q=0.3", "hybrid p_k=0.4 q=0.2"]
    assert points_inside(ax) == []
    # the dense model at 100 %: a dashed line inside the frame, and the caption says dashed
    dense = next(ln for ln in ax.get_lines() if ln.get_label().startswith("dense"))
    assert dense.get_linestyle() == "--" and "Dashed black line" in block.caption
    assert ax.get_ylim()[0] < dense.get_ydata()[0] == 100.0 < ax.get_ylim()[1]
    assert "95 % confidence interval of the mean over seeds and test examples" in block.caption


def test_budget_panels_share_a_range_and_show_the_dense_model(tmp_path):
    store = Store(tmp_path)
    for seed in (0, 1):
        for ratio, shift in ((0.5, 0.0), (0.9, -0.2)):
            add_run(
                store, "one_shot", ratio, seed, 0.95 + shift + seed / 200, epochs=5, examples=200
            )
            add_run(store, "geometric", ratio, seed, 0.96 + shift, epochs=30, examples=200)
    doc = build_document(load_results(tmp_path, outcomes=True), "db")
    block = doc.section("budget").figures()[0]
    axes = block.figure.axes
    assert len(axes) == 2 and axes[0].get_ylim() == axes[1].get_ylim()
    for ax in axes:
        assert points_inside(ax) == []
        assert any(ln.get_label() == "dense (99.00%)" for ln in ax.get_lines())
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "geometric q=0.3" in legend and "one-shot" in legend
    assert "each is a single point" in block.caption and "share one y range" in block.caption
