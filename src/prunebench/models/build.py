"""Building a model from its config: the registered spec's builder with `model.options`."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from prunebench.config import ModelConfig
from prunebench.data.info import DataInfo
from prunebench.errors import ConfigError
from prunebench.models.catalog import MODELS
from prunebench.models.spec import ModelSpec


def build_model(cfg: ModelConfig, info: DataInfo) -> nn.Module:
    """A freshly initialised module (no pretrained weights: see models/weights.py)."""
    spec = model_spec(cfg)
    options: dict[str, Any] = dict(cfg.options)
    if cfg.weights is not None and "weights" in inspect.signature(spec.build).parameters:
        options["weights"] = cfg.weights  # the architecture comes from the weights (HF folder)
    try:
        return spec.build(info, **options)
    except TypeError as exc:
        raise ConfigError(f"model.options for '{cfg.name}' are not accepted: {exc}") from None


def model_spec(cfg: ModelConfig) -> ModelSpec:
    """The spec `model.name` stands for."""
    return MODELS.get(cfg.name)
