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

from prunebench.checkpoints import read_state_dict
from prunebench.data.info import DataInfo
from prunebench.errors import CheckpointError, ConfigError
from prunebench.models.spec import ModelSpec
from prunebench.sources import HF_TASKS

CAUSAL_LM_ENDINGS = tuple(k for k, task in HF_TASKS.items() if task == "causal_lm")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


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
    try:
        return auto_class(info.task).from_config(hf_config, attn_implementation="eager")
    except ValueError as exc:
        kind = "causal LM" if info.task == "causal_lm" else "image classifier"
        raise ConfigError(
            f"model.name=hf: transformers cannot build a {kind} from this config: {_one_line(exc)}"
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


SPEC = ModelSpec(
    build=build_hf,
    task=None,
    description="a Hugging Face causal LM or image classifier from a local folder / config.json",
    read_weights=read_hf_weights,
    example_inputs=hf_example_inputs,
)
