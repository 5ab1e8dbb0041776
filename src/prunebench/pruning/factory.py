"""The pruner a config asks for, built on a dense model: masks, or physical channel removal."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prunebench.criteria.catalog import make_criterion
from prunebench.errors import ConfigError
from prunebench.models.catalog import MODELS
from prunebench.pruning.base import Pruner
from prunebench.pruning.params import select_prunable
from prunebench.pruning.structured import StructuredPruner
from prunebench.pruning.unstructured import UnstructuredPruner

if TYPE_CHECKING:
    from prunebench.config import PruneConfig
    from prunebench.data.info import DataInfo
    from prunebench.models.spec import ModelSpec


def model_name(spec: ModelSpec) -> str:
    """The registry name of a spec (for error messages)."""
    return MODELS.name_of(spec) or "model"


def example_inputs(spec: ModelSpec, info: DataInfo, device: torch.device | str = "cpu") -> Any:
    """The spec's example batch, or a zero image batch (1, C, S, S) from the data info."""
    if spec.example_inputs is not None:
        inputs = spec.example_inputs(info)
    else:
        if not info.in_channels or not info.image_size:
            raise ConfigError(
                f"model '{model_name(spec)}' needs example inputs: give its ModelSpec an "
                "example_inputs function or use a dataset with image_size and in_channels"
            )
        inputs = torch.zeros(1, info.in_channels, info.image_size, info.image_size)
    return _to(inputs, device)


def _to(inputs: Any, device) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: _to(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_to(v, device) for v in inputs)
    return inputs


def make_pruner(
    cfg: PruneConfig, model: nn.Module, spec: ModelSpec, info: DataInfo | None = None
) -> Pruner:
    """The pruner for `cfg.structure`, built on the (dense) `model`. `info` gives the example
    inputs used for MACs and Torch-Pruning's tracing; it is required for structured pruning."""
    criterion = make_criterion(cfg.criterion)
    device = next(model.parameters()).device
    inputs = example_inputs(spec, info, device) if info is not None else None
    meta = {"data_info": asdict(info)} if info is not None else {}
    if cfg.structure == "unstructured":
        prunable = select_prunable(model, cfg, classifier=spec.classifier)
        return UnstructuredPruner(
            model, prunable, criterion, scope=cfg.scope, example_inputs=inputs, meta=meta
        )
    if inputs is None:
        raise ConfigError("structured pruning needs the data info (for example inputs)")
    return StructuredPruner(
        model,
        cfg,
        criterion,
        inputs,
        hooks=spec.structured,
        classifier=spec.classifier,
        model_name=model_name(spec),
        meta=meta,
    )
