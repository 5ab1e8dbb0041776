"""ViT-S/16 from timm (paper appendix F.4.6), at any image and patch size, with pruning hooks.

Structured pruning removes whole attention heads (head dimension kept, so the attention scale
is unchanged) and MLP / residual channels; `after_step` writes the new head counts into timm's
`Attention` modules (timm 1.0.31 reshapes with `num_heads`, `head_dim` and `attn_dim`).
Local weights: a timm checkpoint (.safetensors / .pth); its position embedding is resampled to
this model's patch grid by timm's own checkpoint filter before the strict shape check
(models/weights.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunebench.data.info import DataInfo
from prunebench.errors import ConfigError
from prunebench.models.spec import ModelSpec, StructuredHooks
from prunebench.store.checkpoints import read_state_dict

ARCH = "vit_small_patch16_224"


def attention_modules(model: nn.Module) -> list[nn.Module]:
    from timm.layers import Attention

    return [m for m in model.modules() if isinstance(m, Attention)]


def build_vit(
    info: DataInfo,
    img_size: int | None = None,
    patch_size: int = 16,
    **overrides: Any,
) -> nn.Module:
    """`overrides` go to timm (e.g. depth, embed_dim, num_heads, drop_path_rate)."""
    import timm

    size = info.image_size or 224
    if img_size is not None and img_size != size:
        raise ConfigError(
            f"model.options.img_size={img_size} but the data gives {size}x{size} images; "
            f"set data.image_size={img_size} instead"
        )
    if size % patch_size:
        raise ConfigError(
            f"model.options.patch_size={patch_size} does not divide the image size {size}"
        )
    return timm.create_model(
        ARCH,
        pretrained=False,
        num_classes=info.num_classes or 1000,
        img_size=size,
        patch_size=patch_size,
        in_chans=info.in_channels or 3,
        **overrides,
    )


def read_vit_weights(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    from timm.models.vision_transformer import checkpoint_filter_fn

    state = read_state_dict(path)
    if "pos_embed" in state and "pos_embed" in model.state_dict():
        state = checkpoint_filter_fn(state, model)  # resamples pos_embed to the patch grid
    return state


def vit_pruner_kwargs(model: nn.Module) -> dict[str, Any]:
    """Heads are pruned whole (head_dim kept); StructuredPruner sets how many per step."""
    attns = attention_modules(model)
    tokens = [getattr(model, n, None) for n in ("cls_token", "reg_token", "pos_embed")]
    return {
        # (1, tokens, width) parameters outside any layer: pruned along the residual width
        "unwrapped_parameters": [(p, 2) for p in tokens if isinstance(p, nn.Parameter)],
        "num_heads": {attn.qkv: attn.num_heads for attn in attns},
        "prune_num_heads": True,
        "prune_head_dims": False,
    }


def vit_after_step(model: nn.Module, pruner: Any = None) -> None:
    """Head counts from the layer shapes (whole heads removed, head_dim kept), so this also
    serves a model rebuilt from a pruning history, where no pruner exists (`pruner=None`)."""
    for attn in attention_modules(model):
        heads = attn.qkv.out_features // (3 * attn.head_dim)
        if pruner is not None and pruner.num_heads[attn.qkv] != heads:
            raise RuntimeError(
                f"ViT head bookkeeping differs: {pruner.num_heads[attn.qkv]} vs {heads}"
            )
        attn.num_heads = heads
        attn.attn_dim = heads * attn.head_dim
    proj = getattr(getattr(model, "patch_embed", None), "proj", None)
    if isinstance(proj, nn.Conv2d):  # timm ViTs: the residual width after pruning
        width = proj.out_channels
        model.embed_dim = model.num_features = model.head_hidden_size = width


def vit_example_inputs(info: DataInfo) -> torch.Tensor:
    size = info.image_size or 224
    return torch.randn(1, info.in_channels or 3, size, size)


SPEC = ModelSpec(
    build=build_vit,
    classifier="head",
    description="timm ViT-S/16 (22M params at 224); options: img_size, patch_size, depth, ...",
    read_weights=read_vit_weights,
    example_inputs=vit_example_inputs,
    structured=StructuredHooks(pruner_kwargs=vit_pruner_kwargs, after_step=vit_after_step),
)
