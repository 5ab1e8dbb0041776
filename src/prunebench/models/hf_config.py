"""Whether a pruned Hugging Face model's shapes can be written as its own config.json.

`from_pretrained` builds every layer from one config: the same heads, key/value heads, head
width and MLP width in every layer. `exportable_config` finds those values in the pruned
model (head counts from the attention layouts, the MLP width from the shapes that differ from
the dense config's), writes them into a copy of the config, builds that config on the meta
device (no memory) and compares every tensor's name and shape with the pruned model's: a config
that would load with other shapes is refused (`NotExpressible`), never written. `fixed_heads`
answers, the same way, whether the config can express fewer heads at all (GPT-2, GPT-NeoX and
OPT tie the head width to hidden_size / heads, and the residual width is kept).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from prunebench.pruning.heads import counts as head_counts

# Llama/NeoX/GPT-Neo/..., GPT-2, OPT, Falcon. None in those that have a default (GPT-2, GPT-Neo,
# Falcon) means 4 x hidden_size. Some configs have none (Bloom: 4 x hidden_size, fixed).
MLP_FIELDS = ("intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size")
OWN_FIELDS = ("prunebench_structure",)  # written by hf_after_step, not transformers'


class NotExpressible(ValueError):
    """The pruned shapes are not what any value of the config's fields builds (the reason)."""


def _meta_shapes(model: nn.Module, config: Any) -> dict[str, tuple[int, ...]]:
    """The tensor shapes `config` builds (on the meta device); NotExpressible if it cannot."""
    try:
        with torch.device("meta"):
            built = type(model)(config)
    except (ValueError, TypeError, AssertionError) as exc:
        reason = " ".join(str(exc).split())
        raise NotExpressible(
            f"{type(config).__name__} refuses the pruned values: {reason}"
        ) from None
    return _shapes(built)


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _set_heads(config: Any, heads: int, kv_heads: int, head_dim: int) -> None:
    config.num_attention_heads = heads  # attribute_map: n_head (GPT-2), num_heads (GPT-Neo)
    if getattr(config, "num_key_value_heads", None) is not None:
        config.num_key_value_heads = kv_heads
    config.head_dim = head_dim  # read where the attention honours it (Llama, Qwen2, ...)


def _width_fields(config: Any) -> list[tuple[str, int]]:
    """(field, dense value) of the residual width and the MLP width the config holds."""
    hidden = getattr(config, "hidden_size", None)
    out = [("hidden_size", hidden)] if isinstance(hidden, int) else []
    for name in MLP_FIELDS:
        if hasattr(config, name):
            value = getattr(config, name)
            if value is None and hidden:
                value = 4 * hidden  # the default of the configs that allow None
            if isinstance(value, int):
                return [*out, (name, value)]
    return out


def _new_widths(want: dict, have: dict, dense: int) -> set[int]:
    """The sizes that dimensions of size `dense` in the config's shapes have in the model."""
    return {
        got
        for key, shape in have.items()
        if key in want and len(want[key]) == len(shape)
        for was, got in zip(want[key], shape, strict=True)
        if was == dense and got != dense
    }


def _mismatch(want: dict, have: dict) -> str | None:
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    if missing or extra:
        return f"tensors differ by name ({', '.join((missing + extra)[:3])})"
    for name, shape in have.items():
        if want[name] != shape:
            return f"'{name}' would load as {list(want[name])}, the pruned one is {list(shape)}"
    return None


def exportable_config(model: nn.Module, layouts: list) -> Any:
    """A copy of `model.config` that builds exactly the pruned shapes; NotExpressible otherwise.
    `layouts`: the model's attention head layouts (models/hf.py `hf_heads`)."""
    config = copy.deepcopy(model.config)
    for field in OWN_FIELDS:
        config.__dict__.pop(field, None)
    config.use_cache = True
    config.architectures = [type(model).__name__]
    kind = type(config).__name__
    if layouts:
        pairs = [head_counts(layout) for layout in layouts]
        dims = {layout.head_dim for layout in layouts}
        if len(set(pairs)) > 1 or len(dims) > 1:
            raise NotExpressible(f"the layers keep different heads (query, key/value): {pairs}")
        (q, kv), (head_dim,) = pairs[0], dims
        _set_heads(config, q, kv, head_dim)
    have = _shapes(model)
    want = _meta_shapes(model, config)
    for field in _width_fields(config):  # the residual width first: the MLP's may follow it
        if _mismatch(want, have) is None:
            break
        name, dense = field
        widths = _new_widths(want, have, dense)
        if len(widths) > 1:
            raise NotExpressible(f"the layers keep different widths {sorted(widths)} ({name})")
        if widths:
            setattr(config, name, widths.pop())
            want = _meta_shapes(model, config)
    problem = _mismatch(want, have)
    if problem is not None:
        raise NotExpressible(f"{kind} cannot express the pruned shapes: {problem}")
    return config


def fixed_heads(model: nn.Module, layouts: list) -> str | None:
    """Why the config cannot express fewer heads (None: it can): one whole key/value group
    fewer in every layer is tried on the meta device."""
    if not layouts:
        return None
    q, kv = head_counts(layouts[0])
    if q < 2:
        return None
    fewer_kv = max(kv - 1, 1)
    fewer_q = q - q // kv if kv > 1 else q - 1
    config = copy.deepcopy(model.config)
    _set_heads(config, fewer_q, fewer_kv, layouts[0].head_dim)
    tie = (
        f"{type(model.config).__name__} ties the head width to the hidden size, so it cannot "
        "express fewer heads"
    )
    try:
        shapes = _meta_shapes(model, config)
    except NotExpressible:
        return tie
    names = {m: n for n, m in model.named_modules()}
    weight = f"{names[layouts[0].output]}.weight"
    reads = shapes.get(weight)
    expected = fewer_q * layouts[0].head_dim
    return tie if reads is None or expected not in reads else None
