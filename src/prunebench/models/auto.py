"""Structured-pruning hooks chosen from the model itself, for models that bring none: a Python
builder's module, or a module handed to `StructuredPruner.for_model`. Hugging Face models get
the decoder hooks (whole heads, residual width kept), everything else the torchvision / timm
ones (timm attention heads, torchvision ViT widths, other attention keeps its heads)."""

from __future__ import annotations

from typing import Any

from torch import nn

from prunebench.models.hf import hf_after_step, hf_heads, hf_pruner_kwargs
from prunebench.models.spec import HeadLayout, StructuredHooks
from prunebench.models.zoo import zoo_after_step, zoo_pruner_kwargs


def is_hf(model: nn.Module) -> bool:
    return hasattr(model, "config") and callable(getattr(model, "get_output_embeddings", None))


def auto_pruner_kwargs(model: nn.Module) -> dict[str, Any]:
    return hf_pruner_kwargs(model) if is_hf(model) else zoo_pruner_kwargs(model)


def auto_after_step(model: nn.Module, pruner: Any = None) -> None:
    (hf_after_step if is_hf(model) else zoo_after_step)(model, pruner)


def auto_heads(model: nn.Module) -> list[HeadLayout]:
    return hf_heads(model) if is_hf(model) else []


AUTO_HOOKS = StructuredHooks(
    pruner_kwargs=auto_pruner_kwargs, after_step=auto_after_step, heads=auto_heads
)
