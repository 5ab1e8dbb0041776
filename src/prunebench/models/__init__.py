"""Models by name. Builders import heavy libraries (timm, transformers) only when called."""

from prunebench.models.base import ModelSpec, StructuredHooks, build_model
from prunebench.registry import Registry

MODELS: Registry[ModelSpec] = Registry("model")

# Each module below registers its model(s) on import, after the registry exists.
from prunebench.models import efficientnet as _efficientnet  # noqa: E402, F401
from prunebench.models import gpt_neo as _gpt_neo  # noqa: E402, F401
from prunebench.models import resnet as _resnet  # noqa: E402, F401
from prunebench.models import resnet_cifar as _resnet_cifar  # noqa: E402, F401
from prunebench.models import small as _small  # noqa: E402, F401
from prunebench.models import vit as _vit  # noqa: E402, F401

__all__ = ["MODELS", "ModelSpec", "StructuredHooks", "build_model"]
