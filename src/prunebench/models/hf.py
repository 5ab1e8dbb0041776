"""Hugging Face models from a local folder or a config.json (`model.name=hf`).

The architecture comes from `model.options.config` (a config.json path, or the config as a
mapping: what exports store) or from the `config.json` of the folder in `model.weights`; other
options override config fields. A causal-LM dataset builds `AutoModelForCausalLM`, an image
dataset `AutoModelForImageClassification` with the data's classes, channels and image size. The
model is built randomly initialised; `read_hf_weights` brings a folder's weights
(`from_pretrained`, local files only) through the same key-by-key check as any checkpoint.
Eager attention and `use_cache=False` keep tracing (Torch-Pruning) and training simple;
`generate()` turns the cache on itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunebench.config.source_names import HF_TASKS
from prunebench.data.info import DataInfo
from prunebench.errors import CheckpointError, ConfigError, without_unsafe_advice
from prunebench.measure import is_conv1d
from prunebench.models.attention import keep_heads, leaf_attentions
from prunebench.models.hf_config import fixed_heads
from prunebench.models.roles import output_tensor as logits_of
from prunebench.models.spec import HeadLayout, ModelSpec, StructuredHooks
from prunebench.pruning.heads import counts as head_counts
from prunebench.pruning.heads import in_width, out_width
from prunebench.store.checkpoints import read_state_dict

CAUSAL_LM_ENDINGS = tuple(k for k, task in HF_TASKS.items() if task == "causal_lm")


def _one_line(exc: Exception) -> str:
    """transformers' reason in one line, without its advice to run the model's own code
    (`trust_remote_code`): a local folder's code is never run."""
    return " ".join(without_unsafe_advice(str(exc)).split()) or type(exc).__name__


def read_config(weights: Path | None, config: str | dict[str, Any] | None):
    """A transformers config from a mapping, a config.json path or the weights folder."""
    from transformers import AutoConfig

    if isinstance(config, dict):
        raw = dict(config)
    else:
        path = Path(config) if config is not None else Path(weights) / "config.json"
        if not path.is_file():
            raise ConfigError(f"model.name=hf: '{path}' does not exist; give a config.json")
        try:
            raw = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"model.name=hf: '{path}' is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(
                f"model.name=hf: '{path}' holds a JSON {type(raw).__name__}, not a config: a "
                'config.json is one JSON object of fields, e.g. {"model_type": "vit", ...}'
            )
    model_type = raw.pop("model_type", None)
    if model_type is None:
        raise ConfigError("model.name=hf: the config has no 'model_type' (e.g. llama, vit)")
    raw.pop("transformers_version", None)
    try:
        return AutoConfig.for_model(model_type, **raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"model.name=hf: cannot read the config: {_one_line(exc)}") from None


def auto_class(task: str):
    import transformers

    if task == "causal_lm":
        return transformers.AutoModelForCausalLM
    return transformers.AutoModelForImageClassification


def build_hf(
    info: DataInfo,
    weights: Path | None = None,
    config: str | dict[str, Any] | None = None,
    **overrides: Any,
) -> nn.Module:
    hf_config = read_config(weights, config)
    for key, value in overrides.items():
        if not hasattr(hf_config, key):
            raise ConfigError(f"model.options.{key} is not a field of {type(hf_config).__name__}")
        setattr(hf_config, key, value)
    if info.task == "causal_lm":
        vocab = getattr(hf_config, "vocab_size", None)
        if info.vocab_size is not None and vocab is not None and vocab < info.vocab_size:
            raise ConfigError(
                f"model.name=hf: the model has a vocabulary of {vocab} tokens but the "
                f"tokenizer has {info.vocab_size}; use the tokenizer that belongs to the model"
            )
        hf_config.use_cache = False
    else:
        hf_config.num_labels = info.num_classes or hf_config.num_labels
        for field, value in (("num_channels", info.in_channels), ("image_size", info.image_size)):
            if value is not None and hasattr(hf_config, field):
                setattr(hf_config, field, value)
    if hf_config.architectures is None:  # transformers iterates it for DeiT, LeViT, ...
        hf_config.architectures = []
    try:
        return auto_class(info.task).from_config(hf_config, attn_implementation="eager")
    except ValueError as exc:
        kind = "a causal LM" if info.task == "causal_lm" else "an image classifier"
        raise ConfigError(
            f"model.name=hf: transformers cannot build {kind} from this config: {_one_line(exc)}"
        ) from None


def read_hf_weights(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """A Hugging Face folder (from_pretrained, local files only) or a state-dict file."""
    if not path.is_dir():
        return read_state_dict(path)
    task = "causal_lm" if type(model).__name__.endswith(CAUSAL_LM_ENDINGS) else "image"
    try:
        loaded = auto_class(task).from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot load a Hugging Face model from '{path}': {_one_line(exc)}"
        ) from None
    state = loaded.state_dict()
    for name, tensor in model.state_dict().items():  # tied weights the folder leaves out
        if name not in state and name.endswith("lm_head.weight"):
            state[name] = tensor
    return state


def hf_example_inputs(info: DataInfo) -> torch.Tensor:
    if info.task == "causal_lm":
        return torch.randint(0, info.vocab_size or 2, (1, min(info.seq_len or 32, 128)))
    size = info.image_size or 224
    return torch.randn(1, info.in_channels or 3, size, size)


# ------------------------------------------------------------------ structured pruning

OUTPUTS = ("o_proj", "out_proj", "dense", "c_proj")


def _linear(layer: Any) -> bool:
    return isinstance(layer, nn.Linear) or is_conv1d(layer)


def hf_heads(model: nn.Module) -> list[HeadLayout]:
    """Attention layers whose heads prunebench cuts whole: separate q/k/v projections (Llama,
    Qwen2, Mistral, OPT, GPT-Neo; grouped-query attention included), GPT-2's fused `c_attn`
    (laid out q|k|v) and GPT-NeoX's `query_key_value` (laid out per head)."""
    out = []
    for name, attention in leaf_attentions(model):
        output = next((getattr(attention, n) for n in OUTPUTS if hasattr(attention, n)), None)
        head_dim = getattr(attention, "head_dim", getattr(attention, "head_size", None))
        if not _linear(output) or not isinstance(head_dim, int):
            continue
        qkv = [getattr(attention, n, None) for n in ("q_proj", "k_proj", "v_proj")]
        if all(_linear(p) for p in qkv):
            layout = HeadLayout(name, "separate", tuple(qkv), output, head_dim)
        elif _linear(getattr(attention, "c_attn", None)):
            layout = HeadLayout(name, "qkv", (attention.c_attn,), output, head_dim)
        elif _linear(getattr(attention, "query_key_value", None)):
            layout = HeadLayout(name, "per_head", (attention.query_key_value,), output, head_dim)
        else:
            continue
        if _widths_fit(layout):
            out.append(layout)
    return out


def _widths_fit(layout: HeadLayout) -> bool:
    """The layer widths agree with the layout (true before and after whole heads are cut): a
    fused projection holds q, k and v of equal width (not multi-query: GPT-BigCode, Falcon),
    the output projection reads the query width, and key/value heads divide the query heads."""
    d = layout.head_dim
    reads = in_width(layout.output)
    widths = [out_width(p) for p in layout.projections]
    if layout.layout == "separate":
        q, k, v = widths
        return q == reads and k == v and k > 0 and q % d == 0 and k % d == 0 and q % k == 0
    return widths[0] == 3 * reads and reads % d == 0


def forward_ids(model: nn.Module, input_ids: torch.Tensor) -> Any:
    return model(input_ids=input_ids, use_cache=False)


def hf_pruner_kwargs(model: nn.Module) -> dict[str, Any]:
    """Torch-Pruning prunes MLP channels; heads are cut by prunebench (`hf_heads`), so their
    projections stay out of its groups. A language model's residual width is kept: it is the
    embedding width, tied to the output. Attention that is not recognised keeps its heads."""
    layouts = hf_heads(model)
    cut = "attention heads are cut whole by prunebench (pruning/heads.py), not channel-wise"
    ignored: list[tuple[nn.Module, str]] = [
        (projection, cut) for layout in layouts for projection in layout.projections
    ]
    handled = {dict(model.named_modules())[layout.name] for layout in layouts}
    ignored += keep_heads(model, handled)
    language_model = model.get_output_embeddings() is not None
    if language_model:
        reason = "the residual width (the embedding width, tied to the output) is kept"
        embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
        ignored += [(m, reason) for m in [*embeddings, model.get_output_embeddings()]]
    # norms Torch-Pruning has no pruner for (RMSNorm): their weight follows the channels
    norms = [
        (m.weight, 0)
        for m in model.modules()
        if "Norm" in type(m).__name__
        and not isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm))
        and isinstance(getattr(m, "weight", None), nn.Parameter)
        and m.weight.dim() == 1
    ]
    # tokens and position embeddings held as bare parameters (ViT's cls_token): the width is last
    tokens = [
        (param, param.dim() - 1)
        for module in model.modules()
        if not isinstance(module, (nn.Linear, nn.Embedding, nn.modules.conv._ConvNd))
        for name, param in module.named_parameters(recurse=False)
        if param.dim() >= 2 and name != "weight"
    ]
    out: dict[str, Any] = {"ignored_layers": ignored, "output_transform": logits_of}
    if norms or tokens:
        out["unwrapped_parameters"] = norms + tokens
    if language_model:
        out["forward_fn"] = forward_ids
    conv1d = {type(m) for m in model.modules() if is_conv1d(m)}
    if conv1d:  # GPT-2's layers: Torch-Pruning learns them, and roots groups at them too
        # imported here: loading Torch-Pruning costs seconds, only structured pruning needs it
        from prunebench.pruning.tp_adapter import Conv1DPruner

        out["customized_pruners"] = {kind: Conv1DPruner() for kind in conv1d}
        out["root_module_types"] = [nn.modules.conv._ConvNd, nn.Linear, *conv1d]
    return out


def hf_after_step(model: nn.Module, pruner: Any = None) -> None:
    """Head counts from the layer shapes into the attention modules and the config (per-layer
    values in `config.prunebench_structure`), so that a pruned model runs and `generate`s."""
    heads: list[int] = []
    kv_heads: list[int] = []
    modules = dict(model.named_modules())
    for layout in hf_heads(model):
        q, kv = head_counts(layout)
        attention = modules[layout.name]
        for attr, value in (("num_heads", q), ("num_attention_heads", q),
                            ("num_key_value_heads", kv), ("num_key_value_groups", q // kv)):  # fmt: skip
            if hasattr(attention, attr):
                setattr(attention, attr, value)
        if layout.layout == "qkv":
            attention.split_size = q * layout.head_dim
        heads.append(q)
        kv_heads.append(kv)
    config = model.config
    config.prunebench_structure = {"num_heads": heads, "num_key_value_heads": kv_heads}
    if heads and len(set(heads)) == 1 and len(set(kv_heads)) == 1:
        for attr, value in (
            ("num_attention_heads", heads[0]),
            ("num_key_value_heads", kv_heads[0]),
        ):
            if hasattr(config, attr):
                setattr(config, attr, value)


SPEC = ModelSpec(
    build=build_hf,
    task=None,
    description="a Hugging Face causal LM or image classifier from a local folder / config.json",
    read_weights=read_hf_weights,
    example_inputs=hf_example_inputs,
    structured=StructuredHooks(
        pruner_kwargs=hf_pruner_kwargs,
        after_step=hf_after_step,
        heads=hf_heads,
        fixed_heads=fixed_heads,
    ),
)
