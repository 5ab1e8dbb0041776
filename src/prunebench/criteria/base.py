"""The criterion interface shared by unstructured masks and structured channel groups.

A criterion scores single weights (`weight_scores`, higher = more important = kept). Structured
pruning sums those scores over every weight a channel group would remove (`group_importance`),
which is how magnitude, Taylor and OBD scores extend to channels; a criterion for which that sum
means nothing (Wanda) sets `structured = False`, and one that scores channels directly (random)
overrides `group_importance`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from prunebench.data.base import Batch
    from prunebench.tasks import Task


class Criterion:
    """Scores every prunable weight; higher means more important (kept longer).

    Data-dependent criteria set `needs_data` and read calibration batches from the TRAIN split.
    """

    name: str = "criterion"
    needs_data: bool = False
    structured: bool = True  # meaningful for channel groups

    def weight_scores(
        self,
        model: nn.Module,
        params: Mapping[str, nn.Parameter],
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def group_importance(
        self,
        model: nn.Module,
        params: Mapping[str, nn.Parameter],
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> Any:
        """A Torch-Pruning importance: per channel, the sum of the weight scores of its group."""
        from prunebench.criteria.groups import SummedScoreImportance

        scores = self.weight_scores(model, params, batches, task)
        return SummedScoreImportance({params[n]: s for n, s in scores.items()})
