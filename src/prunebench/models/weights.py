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

from prunebench.errors import ConfigError
from prunebench.models.build import example_inputs, model_spec
from prunebench.models.roles import find_classifier
from prunebench.store.checkpoints import load_weights, read_state_dict

if TYPE_CHECKING:
    from prunebench.config.schema import ModelConfig
    from prunebench.data.info import DataInfo


def load_pretrained(model: nn.Module, cfg: ModelConfig, info: DataInfo | None = None) -> None:
    """`info` gives the example inputs that find the classifier (`model.reset_classifier`)."""
    if cfg.weights is None:
        return
    spec = model_spec(cfg)
    state = spec.read_weights(model, cfg.weights) if spec.read_weights else None
    if state is None:
        state = read_state_dict(cfg.weights)
    skip: tuple[str, ...] = ()
    if cfg.reset_classifier:
        inputs = example_inputs(spec, info) if info is not None else None
        name = find_classifier(model, inputs, spec.classifier)
        if name is None:
            raise ConfigError("model.reset_classifier: no layer produces the model's output")
        skip = (name,)
    load_weights(model, state, str(cfg.weights), skip)
