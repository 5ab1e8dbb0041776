"""Data-free criteria: weight magnitude (L1, L2) and the random baseline."""

from __future__ import annotations

import torch

from prunebench.criteria.base import Criterion


class MagnitudeL1(Criterion):
    """|w| (Han et al. 2015); for channel groups the L1 norm of the group."""

    name = "magnitude"
    norm = 1

    def scores_each(self, model, params, batches=None, task=None):
        for name, p in params.items():
            yield name, p.detach().abs()


class MagnitudeL2(MagnitudeL1):
    """w^2: the same ranking as |w| for single weights; differs for channel groups."""

    name = "magnitude_l2"
    norm = 2

    def scores_each(self, model, params, batches=None, task=None):
        for name, p in params.items():
            yield name, p.detach().pow(2)


class RandomScores(Criterion):
    """Uniform random scores from torch's global RNG (seeded per step): the baseline."""

    name = "random"

    def scores_each(self, model, params, batches=None, task=None):
        for name, p in params.items():
            yield name, torch.rand(p.shape).to(p.device)

    def group_importance(self, model, params, batches=None, task=None):
        """One uniform score per channel (a sum of random weight scores would favour wide groups)."""
        from prunebench.criteria.groups import RandomGroupImportance

        return RandomGroupImportance()
