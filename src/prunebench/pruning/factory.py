"""The pruner a config asks for, built on a dense model: masks, or physical channel removal."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from torch import nn

from prunebench.config.source_names import MODEL_KINDS
from prunebench.criteria.catalog import make_criterion
from prunebench.errors import ConfigError
from prunebench.models.build import example_inputs
from prunebench.models.catalog import MODELS
from prunebench.pruning.base import Pruner
from prunebench.pruning.params import select_prunable
from prunebench.pruning.structured import StructuredPruner
from prunebench.pruning.unstructured import UnstructuredPruner

if TYPE_CHECKING:
    from prunebench.config.schema import PruneConfig
    from prunebench.data.info import DataInfo
    from prunebench.models.spec import ModelSpec


def model_name(spec: ModelSpec, model: nn.Module) -> str:
    """How error messages name the model: its registry name, its source (`timm:NAME`), or, for
    a source shared by many architectures (`hf`), the class that was built."""
    registered = MODELS.name_of(spec)
    if registered is not None:
        return registered
    if spec.description.partition(":")[0] in MODEL_KINDS:
        return spec.description
    return type(model).__name__


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
        prunable = select_prunable(model, cfg, classifier=spec.classifier, example_inputs=inputs)
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
        model_name=model_name(spec, model),
        meta=meta,
    )
