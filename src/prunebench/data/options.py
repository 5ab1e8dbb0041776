"""Dataset-specific settings from `data.options`, checked against each dataset's defaults.

The defaults live here, not in the dataset modules, so that config validation can check a
config's options without importing (or building) the dataset: a typo in `data.options` is an
error before anything is trained, not after the dense model has been pretrained for a dataset
variant nobody asked for.
"""

from __future__ import annotations

from typing import Any

from prunebench.errors import ConfigError
from prunebench.registry import suggest

# What every image source of the user's own data takes (data/images.py).
IMAGE_OPTIONS: dict[str, Any] = {
    "mean": None,  # per channel, in [0, 1] units; None: the training split's
    "std": None,
    "padding": None,  # random-crop padding in pixels; None: image size / 8
    "channels": 3,  # 3: RGB, 1: grayscale
    "max_memory_mb": 2048,  # decoded pools up to this size are kept in memory
}

# Every registered dataset has an entry; a dataset without options has an empty one.
OPTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "image_folder": {**IMAGE_OPTIONS, "test_fraction": 0.2},
    "arrays": {
        **IMAGE_OPTIONS,
        "inputs": "x",
        "labels": "y",
        "layout": "auto",  # images: auto, nchw or nhwc
        "test_fraction": 0.2,
        "groups": None,  # an array of group ids (clusters of test examples), by name
    },
    "hf_dataset": {
        **IMAGE_OPTIONS,
        "image_column": "image",
        "label_column": "label",
        "text_column": None,  # set: a causal-LM corpus
        "train_files": None,
        "test_files": None,
        "test_fraction": 0.2,
        "cache_dir": None,
    },
    "digits": {},
    "cifar10": {},
    "cifar100": {},
    "imagenet": {},
    "synthetic_stories": {"stories": 3000, "seed": 0},
    "tinystories": {
        "text_field": "text",
        "train_files": None,
        "test_files": None,
        "train_stories": None,
        "eval_stories": None,
        "cache_dir": None,  # where `datasets` keeps its Arrow cache; None: its default
    },
}


def _same_kind(value: Any, default: Any) -> bool:
    """Whether `value` may replace `default` (None defaults take anything; ints fit floats)."""
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def dataset_options(name: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`defaults` updated with `given`; an unknown key or a value of the wrong type is a
    ConfigError naming it."""
    for key, value in given.items():
        if key not in defaults:
            known = suggest(key, list(defaults)) if defaults else "it takes no options"
            raise ConfigError(f"data.options.{key} is not an option of dataset '{name}' ({known})")
        if not _same_kind(value, defaults[key]):
            raise ConfigError(
                f"data.options.{key} of dataset '{name}' must be a "
                f"{type(defaults[key]).__name__} like {defaults[key]!r}, not {value!r:.40}"
            )
    return {**defaults, **given}


def check_dataset_options(name: str, given: dict[str, Any]) -> None:
    """Config-time check of `data.options` for a dataset listed in OPTION_DEFAULTS (a dataset
    registered elsewhere checks its options when it is built)."""
    if name in OPTION_DEFAULTS:
        dataset_options(name, given, OPTION_DEFAULTS[name])
