"""A pruned model's state as plain tensors: the one format of step checkpoints, of the states
the driver ships to workers, and of what export rebuilds from.

`pack` turns (model, pruner) into CPU tensors plus JSON metadata: the model's weights under
`model::`, the pruner's tensors (unstructured keep-masks) under `mask::`, the pruner's metadata
(structured: the Torch-Pruning history) under "pruner". `rebuild` brings a freshly built dense
model to the stored structure; `restore` also loads the weights. No pickle anywhere.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunebench.config.schema import ModelConfig, PruneConfig
from prunebench.data.info import DataInfo
from prunebench.models.build import build_model, model_spec
from prunebench.pruning.base import Pruner
from prunebench.pruning.factory import make_pruner
from prunebench.store.checkpoints import MASKS, load_weights

WEIGHTS = "model::"
Tensors = dict[str, torch.Tensor]


def pack(model: nn.Module, pruner: Pruner, meta: dict[str, Any]) -> tuple[Tensors, dict[str, Any]]:
    """CPU copies of the weights and the pruner's tensors, and `meta` plus the pruner's own."""
    pruner_tensors, pruner_meta = pruner.state()
    tensors = {WEIGHTS + k: v for k, v in model.state_dict().items()}
    tensors.update({MASKS + k: v for k, v in pruner_tensors.items()})
    tensors = {k: v.detach().to("cpu").clone() for k, v in tensors.items()}
    return tensors, {**meta, "pruner": pruner_meta}


def stored_weights(tensors: Tensors) -> Tensors:
    return {k.removeprefix(WEIGHTS): v for k, v in tensors.items() if k.startswith(WEIGHTS)}


def stored_masks(tensors: Tensors) -> Tensors:
    """Keep-masks by parameter name (unstructured states; empty otherwise)."""
    return {k.removeprefix(MASKS): v for k, v in tensors.items() if k.startswith(MASKS)}


def rebuild(
    model_cfg: ModelConfig,
    prune_cfg: PruneConfig,
    info: DataInfo,
    pruner_tensors: Tensors,
    pruner_meta: dict[str, Any],
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, Pruner]:
    """A fresh dense model on `device` and its pruner, brought to the stored structure (the
    weights are the fresh ones until loaded)."""
    model = build_model(model_cfg, info).to(device)
    pruner = make_pruner(prune_cfg, model, model_spec(model_cfg), info)
    model = pruner.restore(model, pruner_tensors, pruner_meta)
    return model, pruner


def restore(
    model_cfg: ModelConfig,
    prune_cfg: PruneConfig,
    info: DataInfo,
    tensors: Tensors,
    meta: dict[str, Any],
    device: torch.device | str = "cpu",
    source: str = "state",
) -> tuple[nn.Module, Pruner]:
    """A model and pruner in the state `pack` saved: structure, weights, masks re-applied."""
    model, pruner = rebuild(
        model_cfg, prune_cfg, info, stored_masks(tensors), meta.get("pruner", {}), device
    )
    load_weights(model, stored_weights(tensors), source)
    if pruner.masks is not None:
        pruner.masks.apply()
    return model.to(device), pruner
