"""The criterion interface shared by unstructured masks (and, later, structured groups)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

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

    def weight_scores(
        self,
        model: nn.Module,
        params: Mapping[str, nn.Parameter],
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError
