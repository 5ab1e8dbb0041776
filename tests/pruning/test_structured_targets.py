"""Structured pruning's target arithmetic on plain integers, against hand-computed counts."""

from __future__ import annotations

import math
import random

import pytest

from prunebench.errors import PrunebenchError
from prunebench.pruning.targets import (
    closest_total,
    global_keep_counts,
    head_keep,
    local_keep_counts,
    mean_ratio,
    preset_fractions,
    removal_ratio,
    round_keep,
    uniform_keep,
)


def test_round_keep_moves_to_the_nearest_multiple_and_stays_in_range():
    # 16*0.7=11.2 -> 11 -> 12; 32 -> 22 -> 24; 64 -> 45 -> 44 (the halves go up: 6 -> 8)
    assert [round_keep(11, 16, 4), round_keep(22, 32, 4), round_keep(45, 64, 4)] == [12, 24, 44]
    assert round_keep(6, 16, 4) == 8
    assert round_keep(1, 16, 8) == 8  # at least one multiple
    assert round_keep(14, 16, 4) == 16  # rounds up to all it has, never beyond
    assert round_keep(6, 6, 4) == 6  # nothing pruned: an unpruned size stays, multiple or not
    assert round_keep(0, 5) == 1 and round_keep(9, 5) == 5 and round_keep(3, 5) == 3


def test_preset_fractions_scale_the_ratios_to_the_target():
    # layer3 groups 32*3 channels at 0.6, layer4 64*3 at 0.9, the rest 8*3 + 16*3 at 0
    ratios, originals = [0.6, 0.9, 0.0], [96, 192, 72]
    mean = mean_ratio(ratios, originals)
    assert mean == pytest.approx((57.6 + 172.8) / 360)  # 0.64, the native target
    names = ["layer3.0.conv1", "layer4.0.conv1", "conv1"]
    assert preset_fractions(0.32, ratios, mean, names) == pytest.approx([0.3, 0.45, 0.0])
    assert preset_fractions(mean, ratios, mean, names) == pytest.approx(ratios)
    assert preset_fractions(mean / 0.9, ratios, mean, names)[1] == 1.0  # the largest target
    with pytest.raises(PrunebenchError, match=r"1\.266 > 1 in 'layer4\.0\.conv1'.*0\.7111"):
        preset_fractions(0.9, ratios, mean, names)


def test_local_keep_counts_come_from_the_original_sizes():
    # 8*0.3=2.4 -> prune 2; 16*0.3=4.8 -> 5; 32*0.3=9.6 -> 10
    assert local_keep_counts([0.3] * 3, [8, 16, 32], [8, 16, 32]) == [6, 11, 22]
    # later steps count from the original, never from what is left
    assert local_keep_counts([0.55] * 3, [8, 16, 32], [6, 11, 22]) == [4, 7, 14]
    assert local_keep_counts([0.5], [7], [7]) == [3]  # 3.5 prunes 4: halves round up
    assert local_keep_counts([0.3], [8], [5]) == [5]  # never grows back
    assert local_keep_counts([0.99, 0.0], [4, 4], [4, 4]) == [1, 4]  # never empties
    assert local_keep_counts([0.3, 0.45], [16, 64], [16, 64], round_to=4) == [12, 36]


def test_global_keep_counts_rank_normalized_scores_once():
    scores = [[10.0, 30.0], [1.0, 2.0, 3.0]]
    # raw: the two lowest are 1 and 2, both in group 1
    assert global_keep_counts(0.4, [2, 3], scores, normalizer="none") == [2, 1]
    # by group mean: 0.5 1.5 | 0.5 1.0 1.5 -> the two 0.5s go (ties by position)
    assert global_keep_counts(0.4, [2, 3], scores, normalizer="mean") == [1, 2]
    # a tie goes to the lower index: the first group's first channel
    assert global_keep_counts(0.25, [2, 2], [[1.0, 1.0], [1.0, 1.0]]) == [1, 2]


def test_global_keep_counts_keep_a_channel_per_group_and_count_from_the_original():
    # 0.99 of 5 prunes all 5: each group keeps its best channel instead
    assert global_keep_counts(0.99, [2, 3], [[1.0, 2.0], [3.0, 4.0, 5.0]]) == [1, 1]
    # the second group's lowest channel cannot go: the next lowest overall does
    assert global_keep_counts(0.4, [1, 4], [[0.0], [5.0, 6.0, 7.0, 8.0]], "none") == [1, 2]
    # an iterative step: 0.5 of the ORIGINAL 8 keeps 4 of the 7 left
    left = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]
    assert global_keep_counts(0.5, [4, 4], left, normalizer="none") == [1, 3]
    assert global_keep_counts(0.0, [4, 4], left) == [3, 4]  # nothing more to prune


def test_global_keep_counts_round_after_the_ranking():
    scores = [[0.1] * 8, [1.0] * 8]
    assert global_keep_counts(0.25, [8, 8], scores, "none") == [4, 8]
    assert global_keep_counts(0.25, [8, 8], scores, "none", round_to=4) == [4, 8]
    assert global_keep_counts(0.25, [8, 8], scores, "none", round_to=8) == [8, 8]


def test_rounded_global_counts_keep_the_scope_total_within_half_a_step():
    # rounded one by one, 6 of 12 and 10 of 20 at round_to=4 both go up: 8 + 12 = 20, not 16
    scores = [[0.0] * 6 + [9.0] * 6, [0.0] * 10 + [9.0] * 10]
    assert global_keep_counts(0.5, [12, 20], scores, "none") == [6, 10]
    assert global_keep_counts(0.5, [12, 20], scores, "none", round_to=4) == [4, 12]  # a tie: first
    assert closest_total([8, 12], [7, 10], [12, 20], 16, 4) == [8, 8]  # 10 -> 12 went up most
    assert closest_total([4, 4], [5, 6], [8, 8], 12, 4) == [4, 8]  # 6 -> 4 went down most
    assert closest_total([8, 8], [8, 8], [8, 8], 14, 4) == [8, 8]  # within half a step
    assert closest_total([4, 4], [4, 4], [4, 6], 12, 4) == [4, 4]  # no room: never grows


@pytest.mark.parametrize("seed", range(20))
def test_iterative_and_one_shot_keep_the_same_total_with_rounding(seed):
    """Three steps toward t end within half a rounding step of one step to t (round_to=4)."""
    rng = random.Random(seed)
    originals = [rng.choice([8, 16, 24, 32, 64]) for _ in range(rng.randint(2, 8))]
    target, step = rng.uniform(0.3, 0.8), 4
    exact = sum(originals) - math.floor(target * sum(originals) + 0.5)

    def keep_after(targets):
        current = list(originals)
        for t in targets:
            scores = [[rng.random() for _ in range(c)] for c in current]
            current = global_keep_counts(t, originals, scores, "none", step)
        return current

    for targets in ([target], [target / 3, 2 * target / 3, target]):
        kept = keep_after(targets)
        assert all(k % step == 0 or k == n for k, n in zip(kept, originals, strict=True))
        assert abs(sum(kept) - exact) <= step / 2


def test_head_keep_counts_from_the_original_and_rounds_halves_up():
    assert [head_keep(t, 8) for t in (0.125, 0.25, 0.375, 0.5)] == [7, 6, 5, 4]
    assert head_keep(0.99, 4) == 1  # never zero heads
    assert head_keep(0.5, 6) == 3
    assert [head_keep(t, 4) for t in (0.25, 0.5, 0.75)] == [3, 2, 1]
    # exact halves prune the larger count (round(n * (1 - t)) would keep 2, 2 and 4)
    assert [head_keep(0.25, 2), head_keep(0.5, 3), head_keep(0.5, 7)] == [1, 1, 3]


def test_removal_ratio_removes_exactly():
    for current in range(1, 65):
        for remove in range(current + 1):
            r = removal_ratio(current, remove)
            assert math.ceil(r * current) == remove  # Torch-Pruning's local head count
            assert current - int(current * (1 - r)) == remove  # its global head count


def test_uniform_keep_gives_every_peer_the_mean_count_half_up():
    # "mlp": (10 + 13) / 2 = 11.5 -> 12 for both; "qkv": (6 + 6 + 7) / 3 = 6.33 -> 6 for all
    peers = ["mlp", "qkv", "mlp", "qkv", "qkv"]
    assert uniform_keep(peers, [10, 6, 13, 6, 7], [16, 8, 16, 8, 8], None) == [12, 6, 12, 6, 6]
    # then round_keep: 12 -> 12 on multiples of 4; a peer never grows past what it has now
    assert uniform_keep(["a", "a"], [5, 7], [16, 5], 4) == [8, 5]
