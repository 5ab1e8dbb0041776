"""Building a model from its config: `model_spec` turns `model.name` (a registered name or a
source, see prunebench.config.source_names) into the one ModelSpec the rest of the package uses."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from prunebench.config.schema import ModelConfig
from prunebench.config.source_names import load_builder, parse, python_reference
from prunebench.data.info import DataInfo
from prunebench.errors import ConfigError
from prunebench.models.auto import AUTO_HOOKS
from prunebench.models.catalog import MODELS
from prunebench.models.hf import SPEC as HF_SPEC
from prunebench.models.spec import ModelSpec
from prunebench.models.zoo import timm_spec, torchvision_spec

# Attributes a python builder may carry to fill its spec (instead of returning a ModelSpec).
SPEC_ATTRIBUTES = ("task", "classifier", "example_inputs", "structured", "read_weights")


def build_model(cfg: ModelConfig, info: DataInfo) -> nn.Module:
    """A freshly initialised module (no pretrained weights: see models/weights.py)."""
    spec = model_spec(cfg)
    if spec.task is not None and spec.task != info.task:
        raise ConfigError(
            f"model '{cfg.name}' is a {spec.task} model but the data is a {info.task} "
            "dataset; pick a matching pair"
        )
    options: dict[str, Any] = dict(cfg.options)
    if cfg.weights is not None and "weights" in inspect.signature(spec.build).parameters:
        options["weights"] = cfg.weights  # the architecture comes from the weights (HF folder)
    try:
        model = spec.build(info, **options)
    except TypeError as exc:
        raise ConfigError(f"model.options for '{cfg.name}' are not accepted: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model '{cfg.name}': the builder returned {type(model).__name__}, not a "
            "torch.nn.Module"
        )
    return model


def check_output_width(model: nn.Module, cfg: ModelConfig, info: DataInfo) -> None:
    """A classifier must give one output per class of the data: checked with one forward pass
    of the example inputs (eval mode, no gradients) before anything is trained, so that a
    builder that ignores `info.num_classes` is one line, not an index error mid-training."""
    if info.task != "classification" or not info.num_classes:
        return
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(example_inputs(model_spec(cfg), info))
    finally:
        model.train(training)
    logits = output.logits if hasattr(output, "logits") else output
    if isinstance(logits, torch.Tensor) and logits.dim() >= 2:
        width = logits.shape[-1]
        if width != info.num_classes:
            raise ConfigError(
                f"model '{cfg.name}' gives {width} outputs per example but the data has "
                f"{info.num_classes} classes; build it with data_info.num_classes outputs"
            )


def model_spec(cfg: ModelConfig) -> ModelSpec:
    """The spec `model.name` stands for: registered, or built from its source."""
    source = parse(cfg.name)
    if source.registered:
        return MODELS.get(cfg.name)
    if source.kind == "torchvision":
        return torchvision_spec(source.target)
    if source.kind == "timm":
        return timm_spec(source.target)
    if source.kind == "hf":
        return HF_SPEC
    return python_spec(source.target)


def python_spec(target: str) -> ModelSpec:
    """A user's `ModelSpec`, or a builder `fn(data_info, **options)` whose optional attributes
    (`fn.classifier`, `fn.example_inputs`, `fn.structured`, `fn.task`) fill the spec; without
    `structured`, the hooks are chosen from the built module (models/auto.py)."""
    obj = load_builder(target, "model", ModelSpec)
    if isinstance(obj, ModelSpec):
        return obj
    given = {k: getattr(obj, k) for k in SPEC_ATTRIBUTES if hasattr(obj, k)}
    defaults = {"task": None, "structured": AUTO_HOOKS}
    return ModelSpec(build=obj, **{**defaults, **given}, description=f"python:{target}")


def example_inputs(spec: ModelSpec, info: DataInfo, device: torch.device | str = "cpu") -> Any:
    """The spec's example batch, or a zero batch of one input shaped from the data info."""
    if spec.example_inputs is not None:
        inputs = spec.example_inputs(info)
    elif info.input_shape is not None:
        inputs = torch.zeros(1, *info.input_shape)
    elif info.in_channels and info.image_size:
        inputs = torch.zeros(1, info.in_channels, info.image_size, info.image_size)
    else:
        raise ConfigError(
            f"model '{spec.description or 'model'}' needs example inputs: give its ModelSpec "
            "(or builder) an example_inputs function, or use a dataset with a known input shape"
        )
    return to_device(inputs, device)


def to_device(inputs: Any, device: torch.device | str) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(to_device(v, device) for v in inputs)
    return inputs


def model_source(cfg: ModelConfig) -> str | None:
    """A name that rebuilds this model in any process: the source or declared name itself, or
    for a spec registered from Python the module attribute that holds it (None: not importable,
    e.g. registered in __main__)."""
    source = parse(cfg.name)
    if not source.registered or MODELS.is_declared(cfg.name):
        return cfg.name
    return python_reference(MODELS.get(cfg.name))
