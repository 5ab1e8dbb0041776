"""The user's local pretrained weights, checked key by key and shape by shape before loading.

A model's `read_weights` turns its native format (timm checkpoint, Hugging Face folder) into a
state dict for the model; otherwise the file is read as a plain state dict (.safetensors, or
.pth/.pt/.bin with `weights_only=True`). `model.reset_classifier` leaves the classifier out
(ImageNet weights for a CIFAR model, as in the paper's appendix F.4.4 and F.4.6): it keeps its
fresh initialisation and every other key must still match.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from prunebench.checkpoints import load_weights, read_state_dict
from prunebench.errors import ConfigError
from prunebench.models.catalog import MODELS
from prunebench.models.roles import last_linear_name

if TYPE_CHECKING:
    from prunebench.config import ModelConfig


def classifier_name(model: nn.Module, declared: str | None) -> str:
    name = declared or last_linear_name(model)
    if name is None:
        raise ConfigError("model.reset_classifier: the model has no Linear classifier")
    return name


def load_pretrained(model: nn.Module, cfg: ModelConfig) -> None:
    if cfg.weights is None:
        return
    spec = MODELS.get(cfg.name)
    state = spec.read_weights(model, cfg.weights) if spec.read_weights else None
    if state is None:
        state = read_state_dict(cfg.weights)
    skip = (classifier_name(model, spec.classifier),) if cfg.reset_classifier else ()
    load_weights(model, state, str(cfg.weights), skip)
