"""Models from torchvision and timm by name (`torchvision:NAME`, `timm:NAME`), untrained.

`num_classes` comes from the data. Architectures that fix their input size at construction
get the data's image size (torchvision's ViT and MaxViT, timm models whose pretrained config
says `fixed_input_size`); GoogLeNet and Inception are built without auxiliary heads, so the
model has one output. Other input channel counts replace the first convolution. Local weights
(`model.weights`) are plain state dicts (torchvision's ImageNet .pth files, timm .safetensors).
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from prunebench.data.info import DataInfo
from prunebench.errors import ConfigError
from prunebench.models.attention import keep_heads
from prunebench.models.spec import ModelSpec, StructuredHooks
from prunebench.models.vit import attention_modules, vit_after_step, vit_pruner_kwargs
from prunebench.registry import UnknownNameError, suggest


def torchvision_names() -> list[str]:
    import torchvision.models as tvm

    return tvm.list_models(module=tvm)


def timm_names() -> list[str]:
    import timm

    return timm.list_models()


def _check(name: str, known: list[str], kind: str) -> None:
    if name not in known:
        raise UnknownNameError(
            f"model.name: {kind} has no classification model '{name}' ({suggest(name, known)}); "
            f"list them with `prunebench list models {name[:4]}`"
        )


def torchvision_defaults(name: str, size: int | None) -> dict[str, Any]:
    """Constructor arguments that make `name` build for the data's image size, one output."""
    out: dict[str, Any] = {}
    if name in ("googlenet", "inception_v3"):
        out.update(aux_logits=False, init_weights=True)
    if size is not None and name.startswith("vit_"):
        out["image_size"] = size
    if size is not None and name.startswith("maxvit"):
        out["input_size"] = (size, size)
    return out


def adapt_in_channels(model: nn.Module, channels: int | None) -> nn.Module:
    """Replace the first convolution when the data has other than 3 input channels."""
    if channels is None or channels == 3:
        return model
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels == channels:
                return model
            new = nn.Conv2d(
                channels,
                module.out_channels,
                module.kernel_size,
                module.stride,
                module.padding,
                module.dilation,
                1,
                module.bias is not None,
                module.padding_mode,
            )
            model.set_submodule(name, new)
            return model
    raise ConfigError(f"the model has no Conv2d to take {channels}-channel images")


def torchvision_spec(name: str) -> ModelSpec:
    _check(name, torchvision_names(), "torchvision")

    def build(info: DataInfo, **options: Any) -> nn.Module:
        import torchvision.models as tvm

        kwargs = {**torchvision_defaults(name, info.image_size), **options}
        model = tvm.get_model(name, weights=None, num_classes=info.num_classes or 1000, **kwargs)
        return adapt_in_channels(model, info.in_channels)

    return ModelSpec(build=build, description=f"torchvision:{name}", structured=ZOO_HOOKS)


def timm_spec(name: str) -> ModelSpec:
    import timm

    if not timm.is_model(name):
        _check(name, timm_names(), "timm")

    def build(info: DataInfo, **options: Any) -> nn.Module:
        kwargs: dict[str, Any] = {
            "num_classes": info.num_classes or 1000,
            "in_chans": info.in_channels or 3,
        }
        default = timm.models.get_pretrained_cfg(name)
        size = info.image_size
        if default is not None and default.fixed_input_size and size is not None:
            kwargs["img_size"] = size
        return timm.create_model(name, pretrained=False, **{**kwargs, **options})

    return ModelSpec(build=build, description=f"timm:{name}", structured=ZOO_HOOKS)


# ------------------------------------------------------------------ structured pruning


def zoo_pruner_kwargs(model: nn.Module) -> dict[str, Any]:
    """timm's `Attention` (ViT, DeiT, ...): whole heads, as for the registered ViT; torchvision's
    ViT: its class token and position embedding follow the residual width; any other attention
    keeps its heads (reason recorded), MLP widths are still pruned."""
    timm_attention = attention_modules(model)
    out = vit_pruner_kwargs(model) if timm_attention else {}
    ignored = keep_heads(model, set(timm_attention))
    if ignored:
        out["ignored_layers"] = ignored
    tokens = [getattr(model, "class_token", None)]
    tokens.append(getattr(getattr(model, "encoder", None), "pos_embedding", None))
    extra = [(p, 2) for p in tokens if isinstance(p, nn.Parameter)]  # (1, tokens, width)
    if extra:
        out["unwrapped_parameters"] = [*out.get("unwrapped_parameters", []), *extra]
    heads = [m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if heads:  # the embedding width must stay divisible by the head count
        out["round_to"] = math.lcm(*heads)
    return out


def zoo_after_step(model: nn.Module, pruner: Any = None) -> None:
    if attention_modules(model):
        vit_after_step(model, pruner)
    conv_proj = getattr(model, "conv_proj", None)
    if isinstance(conv_proj, nn.Conv2d) and hasattr(model, "hidden_dim"):  # torchvision ViT
        model.hidden_dim = conv_proj.out_channels


ZOO_HOOKS = StructuredHooks(pruner_kwargs=zoo_pruner_kwargs, after_step=zoo_after_step)
