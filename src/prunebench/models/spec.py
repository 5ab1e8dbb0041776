"""The model spec: how to build an architecture and which of its layers play special roles.

Light on purpose (torch only for type names): the catalog declares specs without importing
the libraries that build them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from prunebench.data.info import DataInfo


@dataclass(frozen=True)
class StructuredHooks:
    """Model-specific Torch-Pruning settings, for models that need more than the defaults.

    `pruner_kwargs(model)` returns extra MetaPruner keyword arguments, read once from the
    dense model (e.g. `num_heads`, `output_transform`, `forward_fn`, extra `ignored_layers`,
    `round_to`). They say WHAT may be pruned; how much each step prunes (channels and heads,
    from the original counts) is StructuredPruner's job (pruning.targets).
    `after_step(model, graph)` fixes attributes Torch-Pruning does not update (e.g. attention
    `num_heads`/`head_dim`, HF config); the attention hooks read the new counts from the layer
    shapes, so `after_step(model, None)` also fixes a model rebuilt from a pruning history;
    `graph` is the pruner's `pruning.tp_adapter.ChannelGraph` (its `num_heads` per layer).
    """

    pruner_kwargs: Callable[..., dict[str, Any]] | None = None
    after_step: Callable[[nn.Module, Any], None] | None = None
    # Attention whose heads prunebench removes itself (pruning/heads.py), for layouts that
    # Torch-Pruning's graph cannot follow (grouped-query attention, fused per-head qkv); the
    # hooks must keep these projections out of Torch-Pruning's groups (`ignored_layers`).
    heads: Callable[[nn.Module], list[HeadLayout]] | None = None
    # Why the model cannot describe fewer heads in its own config (None: it can); with
    # prune.uniform_widths such heads are kept, so the pruned model stays exportable.
    fixed_heads: Callable[[nn.Module, list[HeadLayout]], str | None] | None = None


@dataclass(frozen=True)
class HeadLayout:
    """Where the heads of one attention layer live, so whole heads can be cut out.

    `layout`: 'separate' (q, k, v projections; grouped-query attention when k/v have fewer
    heads: query head j uses key/value head j // (q_heads / kv_heads)), 'qkv' (one fused
    projection laid out (3, heads, head_dim), GPT-2) or 'per_head' (one fused projection laid
    out (heads, 3, head_dim), GPT-NeoX). `output` is the projection back to the residual
    stream. Projections are nn.Linear or transformers' Conv1D (weight stored transposed).
    """

    name: str
    layout: str
    projections: tuple[nn.Module, ...]
    output: nn.Module
    head_dim: int


@dataclass(frozen=True)
class ModelSpec:
    """`build(data_info, **options)` returns a freshly initialised module. A builder that takes a
    `weights` argument receives `model.weights` too (to read the architecture from it).

    `classifier` names the output layer (its rows are classes or vocabulary entries); None means
    the layer whose output becomes the model's output (models/roles.py finds it by tracing).
    `task` must match the dataset's task; None: the model follows the data (the `hf` source
    builds a causal LM or an image classifier, a python builder may serve both).
    """

    build: Callable[..., nn.Module]
    task: str | None = "classification"
    classifier: str | None = None
    description: str = ""
    # Reads the user's local pretrained weights (e.g. a Hugging Face directory) into a state dict
    # for `model`; None: a .safetensors/.pth state dict as it is. models/weights.py checks and
    # loads it.
    read_weights: Callable[[nn.Module, Path], dict[str, Any]] | None = None
    # A batch of example inputs (for tracing with Torch-Pruning and counting MACs); None: an
    # image batch of shape (1, in_channels, image_size, image_size) from the DataInfo.
    example_inputs: Callable[[DataInfo], Any] | None = None
    structured: StructuredHooks | None = None
