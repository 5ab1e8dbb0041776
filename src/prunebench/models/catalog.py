"""The registered models, declared without importing them (config validation stays light).

Each entry names the module attribute holding its `ModelSpec` and the facts a config check
needs (its task). A user's own model is registered with `MODELS.register(name, ModelSpec(...))`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
