"""The registered models, declared without importing them (config validation stays light).

Each entry names the module attribute holding its `ModelSpec` and the facts a config check
needs (its task). A user's own model is registered with `MODELS.register(name, ModelSpec(...))`,
or named by its source (`torchvision:NAME`, `timm:NAME`, `hf`, `python:FILE:FUNCTION`, see
prunebench.config.source_names) without registering anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunebench.config.source_names import hf_config_file, hf_task, parse
from prunebench.registry import Registry

if TYPE_CHECKING:
    from prunebench.models.spec import ModelSpec

MODELS: Registry[ModelSpec] = Registry("model")

MODELS.declare("digits_cnn", "prunebench.models.small:SPEC", task="classification")
MODELS.declare("efficientnet_v2_s", "prunebench.models.efficientnet:SPEC", task="classification")
MODELS.declare("gpt_neo", "prunebench.models.gpt_neo:SPEC", task="causal_lm")
MODELS.declare("resnet18", "prunebench.models.resnet:SPEC", task="classification")
MODELS.declare("resnet18_cifar", "prunebench.models.resnet_cifar:SPEC", task="classification")
MODELS.declare("vit_small_patch16_224", "prunebench.models.vit:SPEC", task="classification")

SOURCE_TASKS = {"torchvision": "classification", "timm": "classification"}


def declared_task(name: str, weights: Path | None, options: dict[str, Any]) -> str | None:
    """The task `model.name` is known for without building it; None: the data decides (a
    python builder, or an `hf` config that names no architecture)."""
    source = parse(name)
    if source.registered:
        return MODELS.fact(MODELS.check(name), "task")
    if source.kind == "hf":
        config = options.get("config")
        return hf_task(config if isinstance(config, dict) else hf_config_file(weights, options))
    return SOURCE_TASKS.get(source.kind)
