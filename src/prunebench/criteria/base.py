"""The criterion interface shared by unstructured masks and structured channel groups.

A criterion scores single weights (higher = more important = kept), one parameter at a time
(`scores_each`; `weight_scores` collects them). Structured pruning sums those scores over every
weight a channel group would remove (`group_importance`, each layer reduced as it arrives),
which is how magnitude, Taylor and OBD scores extend to channels; a criterion for which that sum
means nothing (Wanda) sets `structured = False`, and one that scores channels directly (random)
overrides `group_importance`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
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

    def scores_each(
        self,
        model: nn.Module,
        params: Mapping[str, nn.Parameter],
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> Iterator[tuple[str, torch.Tensor]]:
        """(parameter name, its per-weight scores), one parameter at a time: a consumer that
        reduces each (structured pruning) never holds every score at once. Criteria implement
        this or `weight_scores`."""
        if type(self).weight_scores is Criterion.weight_scores:
            raise NotImplementedError(f"criterion '{self.name}' defines no scores")
        yield from self.weight_scores(model, params, batches, task).items()

    def weight_scores(
        self,
        model: nn.Module,
        params: Mapping[str, nn.Parameter],
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> dict[str, torch.Tensor]:
        """Every parameter's per-weight scores (unstructured pruning ranks them together)."""
        return dict(self.scores_each(model, params, batches, task))

    def group_importance(
        self,
        model: nn.Module,
        params: Mapping[str, nn.Parameter],
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> Any:
        """A Torch-Pruning importance: per channel, the sum of the weight scores of its group,
        from each layer's scores reduced as they arrive (criteria.groups.reduce_scores)."""
        from prunebench.criteria.groups import SummedScoreImportance, reduce_scores

        scores = self.scores_each(model, params, batches, task)
        return SummedScoreImportance(reduce_scores(model, scores))
