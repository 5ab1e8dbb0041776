"""Attention layers that structured pruning meets in models it has no hooks for.

Whole-head pruning needs to know each attention's projections and head counts; the hooks of
models/hf.py (Hugging Face decoders) and models/vit.py (timm's `Attention`) know them. Any other
attention (timm or torchvision windows, Hugging Face vision attention, ...) keeps its heads:
its query/key/value projections are ignored (their outputs are never pruned, so the head
layout stays intact) and so is its output projection (so the width it reads, from which many
attention modules derive their head size, stays too), with the reason recorded, while MLP
widths are still pruned.
"""

from __future__ import annotations

from torch import nn

from prunebench.measure import is_weighted

# Output projections of attention blocks: their outputs are the residual stream, not heads.
OUTPUT_NAMES = {"proj", "out_proj", "o_proj", "dense", "c_proj", "output", "to_out", "wo"}


def is_attention(module: nn.Module) -> bool:
    kind = type(module).__name__
    return "Attention" in kind or "Attn" in kind or isinstance(module, nn.MultiheadAttention)


def leaf_attentions(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Attention modules (by class name) that hold no other attention module."""
    found = [(n, m) for n, m in model.named_modules() if is_attention(m)]
    return [
        (name, module)
        for name, module in found
        if not any(other is not module and is_attention(other) for other in module.modules())
    ]


def projection_layers(attention: nn.Module) -> list[nn.Module]:
    """The layers inside `attention` whose outputs are heads (not the output projection)."""
    return [
        layer
        for name, layer in attention.named_modules()
        if name and name.split(".")[-1] not in OUTPUT_NAMES and is_weighted(layer)
    ]


def output_layers(attention: nn.Module) -> list[nn.Module]:
    """The output projections inside `attention` (back to the width it reads)."""
    return [
        layer
        for name, layer in attention.named_modules()
        if name and name.split(".")[-1] in OUTPUT_NAMES and is_weighted(layer)
    ]


def keep_heads(model: nn.Module, handled: set[nn.Module]) -> list[tuple[nn.Module, str]]:
    """(layer, reason) for every attention no hook handles: its projections keep their outputs
    (the heads), and its output projection too, which keeps the width the attention reads
    (attention often derives its head size from that width: CaiT, Twins, Swin)."""
    out = []
    for name, attention in leaf_attentions(model):
        if attention in handled or isinstance(attention, nn.MultiheadAttention):
            continue
        kind = f"{type(attention).__name__} '{name}'"
        heads = (
            f"attention heads of {kind} are kept (no head-pruning hook for it); MLP widths are "
            "still pruned"
        )
        width = f"the width that {kind} reads is kept (no head-pruning hook for it)"
        out += [(layer, heads) for layer in projection_layers(attention)]
        out += [(layer, width) for layer in output_layers(attention)]
    return out
