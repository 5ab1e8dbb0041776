"""How many channels and heads structured pruning keeps: pure arithmetic on plain numbers.

Every count is taken from the ORIGINAL (dense) sizes, never from the current model, so
iterative, geometric and hybrid schedules land exactly where one-shot pruning to the same
cumulative target t does. One rounding rule throughout, shared with unstructured pruning: t of
n items prunes `count_to_prune(t, n)` = floor(t·n + 0.5), i.e. an exact half is rounded UP in
the pruned count (2 heads at 0.25 keep 1, 3 at 0.5 keep 1, 7 at 0.5 keep 3). Kept in one small
module so each rule is unit-tested by hand, apart from the Torch-Pruning glue that applies it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from prunebench.errors import PrunebenchError
from prunebench.pruning.masks import count_to_prune


def round_keep(keep: int, current: int, round_to: int | None = None) -> int:
    """`keep` moved to the nearest multiple of `round_to` (half up, at least one multiple)
    when it prunes anything, then clipped to [1, current]: a group never grows back, never
    empties, and an unpruned group stays as it is even when its size is no multiple."""
    if round_to and keep < current:
        keep = max(round_to, round_to * math.floor(keep / round_to + 0.5))
    return min(max(keep, 1), current)


def mean_ratio(ratios: Sequence[float], originals: Sequence[int]) -> float:
    """The channel-weighted mean preset ratio r_mean: the preset's own ("native") target."""
    return sum(r * n for r, n in zip(ratios, originals, strict=True)) / sum(originals)


def preset_fractions(
    target: float, ratios: Sequence[float], mean: float, names: Sequence[str]
) -> list[float]:
    """Each group's cumulative fraction t·r_g/r_mean under a preset (so t stays the fraction
    of ALL original channels). A fraction above 1 is an error naming the first such group
    and the largest target the preset allows, r_mean / max r_g."""
    out = []
    for ratio, name in zip(ratios, names, strict=True):
        fraction = target * ratio / mean
        if fraction > 1.0 + 1e-12:
            raise PrunebenchError(
                f"target {target:g} needs a ratio of {fraction:.3f} > 1 in '{name}' under "
                f"this preset; its targets go up to {mean / max(ratios):.4f} (native target "
                f"{mean:.4f})"
            )
        out.append(min(fraction, 1.0))
    return out


def local_keep_counts(
    fractions: Sequence[float],
    originals: Sequence[int],
    current: Sequence[int],
    round_to: int | None = None,
) -> list[int]:
    """Layerwise and preset scopes: group g keeps its original size minus
    count_to_prune(fraction_g, original_g), rounded, never more than it has now."""
    return [
        round_keep(n - count_to_prune(f, n), c, round_to)
        for f, n, c in zip(fractions, originals, current, strict=True)
    ]


def normalized(scores: Sequence[float] | torch.Tensor, how: str = "mean") -> torch.Tensor:
    """Channel scores made comparable across groups for the one global ranking: divided by
    their group's mean ("mean"; raw sums favour layers with a large fan-in) or as they are
    ("none"). Float64, so the ranking does not depend on the scores' dtype or device."""
    score = torch.as_tensor(scores, dtype=torch.float64).cpu()
    if how == "mean":
        mean = float(score.mean())
        if mean > 0:
            return score / mean
    return score


def global_keep_counts(
    target: float,
    originals: Sequence[int],
    scores: Sequence[Sequence[float] | torch.Tensor],
    normalizer: str = "mean",
    round_to: int | None = None,
) -> list[int]:
    """Global scope: the scope keeps its original total minus count_to_prune(t, total); the
    channels to remove are the lowest normalized scores over all groups (ties by position in
    the concatenated ranking, i.e. by group then by index), skipping a group's last channel so
    every group keeps at least one. `scores[g]` holds group g's CURRENT channels."""
    current = [len(s) for s in scores]
    original = sum(originals)
    to_prune = sum(current) - (original - count_to_prune(target, original))
    left = list(current)
    if to_prune > 0:
        flat = torch.cat([normalized(s, normalizer) for s in scores]).tolist()
        owner = [g for g, c in enumerate(current) for _ in range(c)]
        for j in sorted(range(len(flat)), key=lambda j: (flat[j], j)):
            if to_prune == 0:
                break
            g = owner[j]
            if left[g] > 1:
                left[g] -= 1
                to_prune -= 1
    rounded = [round_keep(k, c, round_to) for k, c in zip(left, current, strict=True)]
    if round_to:
        rounded = closest_total(
            rounded, left, current, original - count_to_prune(target, original), round_to
        )
    return rounded


def closest_total(
    rounded: list[int], wanted: Sequence[int], current: Sequence[int], total: int, step: int
) -> list[int]:
    """Group counts rounded one by one to multiples of `step` can miss the scope's total by
    up to half a step per group, and by a different amount after each step of a schedule:
    move whole steps, from the groups that rounding moved the most the other way, while that
    brings the sum closer to `total` (a group stays in [step, current] and on its multiples).
    So iterative and one-shot schedules keep (within half a step) the same number of channels."""
    out = list(rounded)
    while 2 * abs(sum(out) - total) > step:
        delta = -step if sum(out) > total else step
        movable = [
            g for g, n in enumerate(out) if n % step == 0 and step <= n + delta <= current[g]
        ]
        if not movable:
            break
        # the group that rounding moved furthest the other way (ties: the first group)
        g = max(movable, key=lambda g: ((wanted[g] - out[g]) * (delta // step), -g))
        out[g] += delta
    return out


def head_keep(target: float, original: int) -> int:
    """Heads an attention layer keeps at cumulative target t: its ORIGINAL count minus
    count_to_prune(t, original), at least one (a layer without heads cannot attend)."""
    return max(1, original - count_to_prune(target, original))


def removal_ratio(current: int, remove: int) -> float:
    """The ratio r that makes Torch-Pruning remove exactly `remove` of `current` heads, both by
    its local count ceil(r·current) and its global one current - int(current·(1 - r)); the
    half-head margin keeps float rounding from tipping either count."""
    if remove <= 0:
        return 0.0
    return (remove - 0.5) / current


def uniform_keep(
    peers: Sequence[str], keep: Sequence[int], current: Sequence[int], round_to: int | None
) -> list[int]:
    """Groups with the same `peers` key (the same layer role in every block) all keep their
    mean count (half up, `round_keep`), so every layer keeps the same widths; the total moves
    by less than one channel per peer set (before rounding to `round_to`)."""
    totals: dict[str, list[int]] = {}
    for key, n in zip(peers, keep, strict=True):
        totals.setdefault(key, []).append(n)
    means = {key: math.floor(sum(ns) / len(ns) + 0.5) for key, ns in totals.items()}
    return [round_keep(means[key], now, round_to) for key, now in zip(peers, current, strict=True)]
