"""Models by name. Builders import heavy libraries (timm, transformers) only when called."""

from prunebench.models.base import ModelSpec, StructuredHooks, build_model
from prunebench.registry import Registry

MODELS: Registry[ModelSpec] = Registry("model")

from prunebench.models import resnet_cifar as _resnet_cifar  # noqa: E402,F401  (registers itself)
from prunebench.models import small as _small  # noqa: E402,F401

__all__ = ["MODELS", "ModelSpec", "StructuredHooks", "build_model"]
