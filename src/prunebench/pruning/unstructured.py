"""Unstructured pruning: global or layer-wise masks from any criterion's weight scores."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunebench.config.loading import validate
from prunebench.config.schema import PruneConfig
from prunebench.criteria.base import Criterion
from prunebench.criteria.catalog import make_criterion
from prunebench.errors import ConfigError
from prunebench.measure import count_macs, nonzero_macs
from prunebench.pruning.base import Pruner
from prunebench.pruning.masks import MaskSet, global_masks, layerwise_masks
from prunebench.pruning.params import PrunableSet, count_nonzero, select_prunable

SCOPES = {"global": global_masks, "layerwise": layerwise_masks}


class UnstructuredPruner(Pruner):
    """Masks from weight scores. With `example_inputs`, `measure` also counts MACs: the dense
    count and the count weighted by each layer's nonzero weights."""

    def __init__(
        self,
        model: nn.Module,
        prunable: PrunableSet,
        criterion: Criterion,
        scope: str = "global",
        example_inputs: Any = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        if scope not in SCOPES:
            raise ConfigError(f"unstructured pruning has scopes {', '.join(SCOPES)}, not '{scope}'")
        self.prunable = prunable
        self.criterion = criterion
        self.select = SCOPES[scope]
        self.masks = MaskSet(model, prunable.names)
        self.example_inputs = example_inputs
        self.extra_meta = dict(meta or {})
        self.macs = count_macs(model, example_inputs) if example_inputs is not None else None

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        criterion: str = "magnitude",
        scope: str = "global",
        classifier: str | None = None,
        example_inputs: Any = None,
        **options: Any,
    ) -> UnstructuredPruner:
        """Library entry point for your own training loop; `options` are PruneConfig fields
        (exclude_first_conv, exclude_classifier, include_biases, exclude). With
        exclude_classifier, the classifier is `classifier`, else the layer whose output becomes
        the model's output (traced on `example_inputs`, or by torch.fx without them)."""
        cfg = validate(PruneConfig, {"criterion": criterion, "scope": scope, **options}, "pruner")
        prunable = select_prunable(model, cfg, classifier, example_inputs)
        return cls(model, prunable, make_criterion(cfg.criterion), scope=cfg.scope)

    def prune_to(self, model, target, batches=None, task=None):
        params = dict(model.named_parameters())
        chosen = {n: params[n] for n in self.prunable.names}
        scores = self.criterion.weight_scores(model, chosen, batches, task)
        self.masks.set(self.select(scores, self.masks.keep, target))
        self.masks.apply()
        return model

    def measure(self, model: nn.Module) -> dict[str, Any]:
        params = dict(model.named_parameters())
        prunable_total, prunable_nonzero = count_nonzero([params[n] for n in self.prunable.names])
        params_total, params_nonzero = count_nonzero(list(params.values()))
        row = {
            "achieved_sparsity": 1.0 - prunable_nonzero / prunable_total,
            "prunable_total": prunable_total,
            "prunable_nonzero": prunable_nonzero,
            "params_total": params_total,
            "params_nonzero": params_nonzero,
        }
        if self.macs is not None:
            pruned = nonzero_macs(model, self.macs)
            row.update(
                macs_dense=self.macs.total,
                macs_pruned=pruned,
                speedup=self.macs.total / pruned if pruned else None,
            )
        return row

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return self.masks.state(), {**self.extra_meta, "structure": "unstructured"}

    def restore(self, model, tensors, meta):
        self.masks.load_state(tensors)
        return model

    def describe(self, model: nn.Module) -> dict[str, Any]:
        return {"structure": "unstructured", **self.prunable.describe(model)}
