"""The pruner interface the runner drives: prune to a cumulative target, measure, checkpoint."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prunebench.pruning.masks import MaskSet

if TYPE_CHECKING:
    from prunebench.data.base import Batch
    from prunebench.tasks import Task


class Pruner:
    """Applies cumulative targets (fractions of the ORIGINAL prunable weights or channels).

    `masks` is set when training must keep pruned weights at zero (unstructured pruning).
    `example_inputs` is the batch (of one) the pruner traces and counts MACs on; the runner
    times latency on it too.
    """

    masks: MaskSet | None = None
    example_inputs: Any = None

    def prune_to(
        self,
        model: nn.Module,
        target: float,
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> nn.Module:
        raise NotImplementedError

    def measure(self, model: nn.Module) -> dict[str, Any]:
        """Counts read from the model's current weights (never from the schedule): step-row
        columns such as achieved_sparsity, params_total/nonzero, macs_dense/pruned, speedup.
        Latency is not measured here: it needs the dense model, which the runner holds
        (measure.latency_pair)."""
        raise NotImplementedError

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors (unstructured: keep-masks by parameter name) and JSON-able metadata that, with
        the weights, restore this pruning state (`state.pack` namespaces them)."""
        raise NotImplementedError

    def restore(
        self, model: nn.Module, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
    ) -> nn.Module:
        """Bring a freshly built dense model to the pruned structure saved by `state()`."""
        raise NotImplementedError

    def describe(self, model: nn.Module) -> dict[str, Any]:
        """What is prunable and what is not (and why): recorded with the run."""
        raise NotImplementedError
