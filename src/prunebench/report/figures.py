"""The report's figures: pure functions from DataFrames to matplotlib Figures (no pyplot state).

Every line gets its own marker AND line style, so that figures stay readable in grayscale;
colours are the Okabe–Ito palette (safe for colour blindness). The x axis of ratio plots is a
logit scale, because the interesting differences sit between 90 % and 99 %; lines are dodged
sideways on it and the axis is fitted to the dodged points, so no point falls off (a sweep at
one ratio included). Error bars are confidence intervals (columns ci_low / ci_high, from
uncertainty.py), the dense reference is a dashed black line kept inside the frame.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from prunebench.report.prepare import Metric
from prunebench.report.verdicts import BETTER, ONLY_ONE, TIED, UNDECIDED

REGIME_STYLE = {  # colour, marker, line style
    "one_shot": ("#0072B2", "o", "-"),
    "constant": ("#E69F00", "s", "--"),
    "geometric": ("#009E73", "^", "-."),
    "hybrid": ("#CC79A7", "D", ":"),
    "agp": ("#56B4E9", "v", (0, (5, 1))),
    "manual": ("#D55E00", "P", (0, (3, 1, 1, 1, 1, 1))),
    "iterative": ("#000000", "X", (0, (5, 1))),  # the better of constant and geometric
}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2))]
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
BASELINE = ("#777777", "x", (0, (1, 1)))
SIZE = (9.5, 4.4)


class Styles:
    """Hands out (colour, marker, line style) per label; no two labels of a figure share a pair."""

    def __init__(self) -> None:
        self.used: set[tuple[str, str]] = set()
        self.given: dict[str, tuple] = {}

    def __call__(self, label: str, regime: str | None = None) -> tuple:
        if label in self.given:
            return self.given[label]
        if regime in REGIME_STYLE:
            colour, marker, style = REGIME_STYLE[regime]
        else:
            taken = {c for c, _, _ in self.given.values()}
            colour = next((c for c in COLOURS if c not in taken), COLOURS[-1])
            marker, style = "o", "-"
        markers = {m for m, _ in self.used}
        styles = {s for _, s in self.used}
        pairs = list(itertools.product([marker, *MARKERS], [style, *LINESTYLES]))
        # Prefer the regime's own pair, then a pair whose marker and style are both unused.
        fresh = [p for p in pairs if p[0] not in markers and str(p[1]) not in styles]
        free = [p for p in pairs if (p[0], str(p[1])) not in self.used]
        marker, style = (fresh or free)[0]
        self.used.add((marker, str(style)))
        self.given[label] = (colour, marker, style)
        return self.given[label]


def ordered_labels(lines: pd.DataFrame) -> list[str]:
    """Labels in the paper's order of regimes (one-shot, constant, geometric, hybrid, ...)."""
    order = list(REGIME_STYLE)
    pairs = lines[["regime", "label"]].drop_duplicates()
    key = [(order.index(r) if r in order else len(order), str(lab)) for r, lab in pairs.values]
    return [label for _, label in sorted(key)]


def _logit(r) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    return np.log(r / (1 - r))


def dodge(ratios: pd.Series, i: int, n: int, width: float = 0.035) -> np.ndarray:
    """Shift line i of n sideways on the logit axis, so that equal values do not hide a line."""
    shifted = _logit(ratios) + (i - (n - 1) / 2) * width
    return 1 / (1 + np.exp(-shifted))


def _ratio_axis(ax, ratios, positions=None) -> None:
    """Logit x axis with ticks at `ratios`, wide enough for every (dodged) position."""
    ratios = sorted(set(float(r) for r in ratios))
    where = _logit(list(positions) if positions is not None else ratios)
    where = np.concatenate([where, _logit(ratios)])
    lo, hi = float(where.min()), float(where.max())
    pad = 0.1 + 0.12 * max(hi - lo, 0.5)
    ax.set_xscale("logit")
    ax.set_xlim(1 / (1 + np.exp(-(lo - pad))), 1 / (1 + np.exp(-(hi + pad))))
    ax.xaxis.set_major_locator(FixedLocator(ratios))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{100 * x:g}"))
    ax.set_xlabel("pruning ratio (% of prunable weights removed; logit scale)")


def _errors(rows: pd.DataFrame, metric: Metric) -> np.ndarray:
    """(2, n) error-bar lengths from ci_low / ci_high (zero where there is no interval)."""
    mean = rows["mean"].to_numpy(dtype=float)
    low = rows["ci_low"].to_numpy(dtype=float) if "ci_low" in rows else mean
    high = rows["ci_high"].to_numpy(dtype=float) if "ci_high" in rows else mean
    err = np.vstack([mean - np.where(np.isnan(low), mean, low),
                     np.where(np.isnan(high), mean, high) - mean])  # fmt: skip
    return np.maximum(err, 0) * metric.scale


def _dense(ax, dense: float | None, metric: Metric) -> None:
    """The dense model's value as a dashed black line, with room above and below it."""
    if dense is None or pd.isna(dense):
        return
    y = dense * metric.scale
    ax.axhline(y, color="black", linestyle="--", linewidth=1.2,
               label=f"dense ({metric.fmt(dense)}{metric.unit})")  # fmt: skip
    lo, hi = ax.get_ylim()
    room = 0.06 * max(hi - lo, 1e-9)
    ax.set_ylim(min(lo, y - room), max(hi, y + room))


def _finish(fig: Figure, ax, title: str) -> Figure:
    """Title, grid, and the legend OUTSIDE the axes: it never hides a line."""
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def _line(ax, styles: Styles, label: str, regime: str | None, x, mean, err, **kw) -> None:
    colour, marker, style = styles(label, regime)
    ax.errorbar(
        x,
        mean,
        yerr=err,
        label=label,
        color=colour,
        marker=marker,
        linestyle=style,
        capsize=3,
        markersize=6,
        linewidth=1.6,
        **kw,
    )


HIGHLIGHT = {  # decision status -> (marker edge width, legend text)
    BETTER: (2.2, "recommended: better than every other regime"),
    TIED: (1.2, "recommended: best mean, equivalent to another"),
    UNDECIDED: (0.8, "recommended: best mean, not decided"),
    ONLY_ONE: (0.8, "recommended: the only regime"),
}


def _highlight(ax, highlights: pd.DataFrame, positions: dict[tuple[str, float], float],
               metric: Metric) -> None:  # fmt: skip
    """A ring around each recommended point; its weight says how firm the decision is."""
    for status, rows in highlights.groupby("status", sort=False):
        width, text = HIGHLIGHT.get(str(status), (0.8, f"recommended: {status}"))
        x = [positions.get((r.label, r.ratio), r.ratio) for r in rows.itertuples()]
        ax.plot(x, rows["value"] * metric.scale, linestyle="none", marker="o", markersize=16,
                markerfacecolor="none", markeredgecolor="black", markeredgewidth=width,
                label=text, zorder=5)  # fmt: skip


def regime_lines(
    lines: pd.DataFrame,
    metric: Metric,
    title: str,
    dense: float | None = None,
    baseline: pd.DataFrame | None = None,
    highlights: pd.DataFrame | None = None,
) -> Figure:
    """Metric vs ratio, one line per label (mean and confidence interval), with references.

    `lines`: label, regime, ratio, mean, ci_low, ci_high; `baseline`: ratio, mean, ci_low,
    ci_high (random criterion); `highlights`: ratio, label, value, status (the decisions).
    """
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    styles = Styles()
    labels = ordered_labels(lines)
    positions: dict[tuple[str, float], float] = {}
    for i, label in enumerate(labels):
        group = lines[lines["label"] == label].sort_values("ratio")
        x = dodge(group["ratio"], i, len(labels))
        positions.update(zip(zip([label] * len(x), group["ratio"], strict=True), x, strict=True))
        _line(ax, styles, label, str(group["regime"].iloc[0]), x,
              group["mean"] * metric.scale, _errors(group, metric))  # fmt: skip
    ratios = list(lines["ratio"])
    if highlights is not None and not highlights.empty:
        _highlight(ax, highlights, positions, metric)
    _dense(ax, dense, metric)
    if baseline is not None and not baseline.empty:
        _baseline(ax, baseline.sort_values("ratio"), metric)
        ratios += list(baseline["ratio"])
    _ratio_axis(ax, ratios, positions.values())
    ax.set_ylabel(f"test {metric.label}")
    return _finish(fig, ax, title)


def _baseline(ax, b: pd.DataFrame, metric: Metric) -> None:
    """The random-criterion line; when it lies far off, its points are pinned to the edge.

    A random baseline is often tens of points below the regimes; drawn to scale it would
    flatten the differences the figure is about. Pinned points carry their value as text.
    """
    lo, hi = ax.get_ylim()
    span = hi - lo
    y = b["mean"] * metric.scale
    colour, marker, style = BASELINE
    label = "random criterion (best regime)"
    kw = {"color": colour, "marker": marker, "linestyle": style, "linewidth": 1.2}
    if lo - span <= y.min() and y.max() <= hi + span:
        ax.errorbar(b["ratio"], y, yerr=_errors(b, metric), label=label, capsize=3, **kw)
        return
    bottom, top = lo - 0.12 * span, hi + 0.12 * span
    pinned = y.clip(bottom + 0.04 * span, top - 0.04 * span)
    ax.plot(b["ratio"], pinned, label=f"{label}, off scale: value written", **kw)
    ax.set_ylim(bottom, top)
    for x, value, shown in zip(b["ratio"], y, pinned, strict=True):
        if value != shown:
            ax.annotate(f"{value:.1f}", (x, shown), textcoords="offset points", xytext=(7, -3),
                        fontsize=8, color="#444444")  # fmt: skip


def _open_flat_range(ax, values: pd.Series, half: float = 0.5) -> None:
    """Equal values everywhere: a +-0.5 window, not matplotlib's +-4 % of the value."""
    values = values.dropna()
    if len(values) and values.max() == values.min():
        ax.set_ylim(values.iloc[0] - half, values.iloc[0] + half)


def _panels(n: int, width: float = 4.0, height: float = 3.4) -> tuple[Figure, list]:
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows + 0.4))
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def _regime_names(points: pd.DataFrame) -> dict[str, str]:
    """regime -> one legend label for all its variants: their common arguments when they
    share them ('geometric q=0.3'), else the regime's name."""
    out = {}
    for regime, labels in points.groupby("regime")["label"]:
        bases = {str(label).split(" (")[0] for label in labels}
        out[str(regime)] = bases.pop() if len(bases) == 1 else str(regime)
    return out


def retraining_budget(
    points: pd.DataFrame, metric: Metric, ratios: list[float], dense: float | None = None
) -> Figure:
    """Metric vs total fine-tuning epochs, one panel per ratio (paper figure 4).

    `points`: label, regime, ratio, epochs_mean, epochs_std, mean, ci_low, ci_high. A regime's
    variants are joined in order of epochs (one point when it has one variant). All panels
    share one y range, so equal differences look equal, and show the dense model.
    """
    fig, axes = _panels(len(ratios))
    styles = Styles()
    order = list(REGIME_STYLE)
    names = _regime_names(points[points["ratio"].isin(ratios)])
    for ax, ratio in zip(axes, ratios, strict=True):
        here = points[points["ratio"] == ratio]
        regimes = sorted(
            here["regime"].unique(), key=lambda r: (order.index(r) if r in order else len(order), r)
        )
        for regime in regimes:
            group = here[here["regime"] == regime].sort_values("epochs_mean")
            _line(ax, styles, names[regime], str(regime), group["epochs_mean"],
                  group["mean"] * metric.scale, _errors(group, metric),
                  xerr=group["epochs_std"].fillna(0))  # fmt: skip
        ax.set_title(f"pruning ratio {100 * ratio:g} %", fontsize=10)
        ax.set_xlabel("total fine-tuning epochs (all steps)")
        ax.set_ylabel(f"test {metric.label}")
        ax.grid(True, alpha=0.3)
    shown = points[points["ratio"].isin(ratios)]
    err = _errors(shown, metric)
    values = np.concatenate([shown["mean"] * metric.scale - err[0],
                             shown["mean"] * metric.scale + err[1]])  # fmt: skip
    if dense is not None and not pd.isna(dense):
        values = np.append(values, dense * metric.scale)
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    room = 0.08 * max(hi - lo, 0.5)
    for ax in axes:
        ax.set_ylim(lo - room, hi + room)
        _dense(ax, dense, metric)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{metric.label.split(' (')[0].capitalize()} for the retraining budget spent "
                 "(mean and 95 % CI)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    return fig


def criteria(best: pd.DataFrame, metric: Metric) -> Figure:
    """Best result per criterion and ratio; the marker says which regime got it (figure 5).

    `best`: criterion, ratio, mean, ci_low, ci_high, regime.
    """
    fig = Figure(figsize=SIZE)
    ax = fig.add_subplot()
    styles = Styles()
    for i, (criterion, group) in enumerate(best.groupby("criterion", sort=True)):
        group = group.sort_values("ratio")
        ax.plot(
            group["ratio"],
            group["mean"] * metric.scale,
            color="#444444",
            linestyle=LINESTYLES[(i + 1) % len(LINESTYLES)],
            linewidth=1.2,
            label=f"criterion: {criterion}",
        )
        err = _errors(group, metric)
        for j, (_, row) in enumerate(group.iterrows()):
            colour, marker, _ = styles(f"best regime: {row['regime']}", row["regime"])
            ax.errorbar(
                [row["ratio"]],
                [row["mean"] * metric.scale],
                yerr=err[:, j : j + 1],
                linestyle="none",
                marker=marker,
                color=colour,
                ecolor="#444444",
                capsize=3,
                markersize=9,
                markeredgecolor="black",
            )
    for label, (colour, marker, _) in styles.given.items():
        ax.plot(
            [],
            [],
            linestyle="none",
            marker=marker,
            color=colour,
            markeredgecolor="black",
            label=label,
        )
    _ratio_axis(ax, best["ratio"])
    ax.set_ylabel(f"best test {metric.label}")
    return _finish(fig, ax, "Best regime per criterion and ratio")


def ablation(rows: pd.DataFrame, metric: Metric, xlabel: str, title: str, log_x: bool) -> Figure:
    """Metric vs one setting (patience, step size), one panel per ratio (paper figure 7).

    `rows`: ratio, line, regime, x, mean, ci_low, ci_high.
    """
    ratios = sorted(rows["ratio"].unique())
    fig, axes = _panels(len(ratios))
    styles = Styles()
    for ax, ratio in zip(axes, ratios, strict=True):
        for line, group in rows[rows["ratio"] == ratio].groupby("line", sort=True):
            group = group.sort_values("x")
            _line(
                ax,
                styles,
                str(line),
                str(group["regime"].iloc[0]),
                group["x"],
                group["mean"] * metric.scale,
                _errors(group, metric),
            )
        _open_flat_range(ax, rows.loc[rows["ratio"] == ratio, "mean"] * metric.scale)
        if log_x:
            ax.set_xscale("log")
        ax.set_title(f"pruning ratio {100 * ratio:g} %", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"test {metric.label}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def render(fig: Figure, fmt: str = "png", dpi: int = 110) -> bytes:
    """The figure as PNG or SVG bytes."""
    buffer = io.BytesIO()
    fig.savefig(
        buffer, format=fmt, dpi=dpi, metadata={"Software": None} if fmt == "png" else {"Date": None}
    )
    return buffer.getvalue()
