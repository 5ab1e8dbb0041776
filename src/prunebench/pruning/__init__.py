"""Pruners: unstructured masks (and, for structure='structured', physical channel removal)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from prunebench.criteria import make_criterion
from prunebench.pruning.base import Pruner
from prunebench.pruning.masks import MaskSet
from prunebench.pruning.params import PrunableSet, select_prunable
from prunebench.pruning.unstructured import UnstructuredPruner

if TYPE_CHECKING:
    from prunebench.config import PruneConfig
    from prunebench.models import ModelSpec

__all__ = [
    "MaskSet",
    "PrunableSet",
    "Pruner",
    "UnstructuredPruner",
    "make_pruner",
    "select_prunable",
]


def make_pruner(cfg: PruneConfig, model: nn.Module, spec: ModelSpec) -> Pruner:
    criterion = make_criterion(cfg.criterion)
    if cfg.structure == "unstructured":
        prunable = select_prunable(model, cfg, classifier=spec.classifier)
        return UnstructuredPruner(model, prunable, criterion, scope=cfg.scope)
    from prunebench.errors import ConfigError

    raise ConfigError(f"prune.structure '{cfg.structure}' is not available yet")
