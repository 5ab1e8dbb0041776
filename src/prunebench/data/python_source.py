"""The user's own datasets: `data.name=python:FILE.py:FUNCTION` (or `python:module:FUNCTION`).

`FUNCTION(**data.options)` returns torch Datasets: `{"train": ..., "test": ..., "val": ...}`
(val optional) or a tuple `(train, test)` / `(train, val, test)`; or the attribute is a whole
`DatasetSpec`. A test Dataset with a `groups` attribute (one id per item: the document, scene or
patient it comes from) makes the report's intervals cluster-robust. Items are `(input, label)`: an integer label makes an image / vector
classification dataset (classes from the dataset's `classes`, else the largest label + 1), a
token-id sequence as long as the input makes a causal-LM dataset (vocabulary from the dataset's
`vocab_size`, else the largest id + 1). Without val, a seeded (stratified) validation split is
carved from train. Batches come from a DataLoader (the datasets' own transforms, augmentation
included, run per item; the calibration batches are the training set's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prunebench.config.source_names import load_builder
from prunebench.data.base import DataBundle, checked_groups
from prunebench.data.images import count_classes
from prunebench.data.info import DataInfo, DatasetSpec
from prunebench.data.loaders import data_loader, split_bundle
from prunebench.data.splits import stratified_val
from prunebench.errors import ConfigError

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

SPLITS = {2: ("train", "test"), 3: ("train", "val", "test")}


def python_dataset_spec(target: str) -> DatasetSpec:
    obj = load_builder(target, "dataset", DatasetSpec)
    if isinstance(obj, DatasetSpec):
        return obj
    return DatasetSpec(
        build=lambda cfg, device: build_python(obj, target, cfg, device),
        task=None,
        description=f"python:{target}",
    )


def _splits(result: Any, target: str) -> dict[str, Any]:
    if isinstance(result, dict):
        parts = dict(result)
    elif isinstance(result, (tuple, list)) and len(result) in SPLITS:
        parts = dict(zip(SPLITS[len(result)], result, strict=True))
    else:
        raise ConfigError(
            f"dataset source python:{target} returned {type(result).__name__}; return "
            "{'train': ..., 'test': ...} (and optionally 'val') or (train, test)"
        )
    for name in ("train", "test"):
        if name not in parts:
            raise ConfigError(f"dataset source python:{target} returned no '{name}' dataset")
    unknown = sorted(set(parts) - {"train", "val", "test"})
    if unknown:
        raise ConfigError(f"dataset source python:{target} returned unknown split '{unknown[0]}'")
    for name, ds in parts.items():
        if not hasattr(ds, "__len__") or not hasattr(ds, "__getitem__") or len(ds) == 0:
            raise ConfigError(
                f"dataset source python:{target}: '{name}' is not a non-empty torch Dataset"
            )
    return parts


def _labels(ds: Any) -> np.ndarray:
    targets = getattr(ds, "targets", None)
    if targets is not None and len(targets) == len(ds):
        return np.asarray(targets, dtype=np.int64)
    return np.asarray([int(ds[i][1]) for i in range(len(ds))], dtype=np.int64)


def _is_label(y: Any) -> bool:
    return isinstance(y, (int, np.integer)) or (isinstance(y, torch.Tensor) and y.dim() == 0)


def build_python(
    fn: Callable[..., Any], target: str, cfg: DataConfig, device: torch.device
) -> DataBundle:
    from torch.utils.data import Subset

    try:
        result = fn(**cfg.options)
    except TypeError as exc:
        raise ConfigError(f"data.options for python:{target} are not accepted: {exc}") from None
    parts = _splits(result, target)
    x0, y0 = parts["train"][0]
    x0 = torch.as_tensor(x0)
    if _is_label(y0):
        labels = _labels(parts["train"])
        classes = getattr(parts["train"], "classes", None)
        num_classes = len(classes) if classes else count_classes(labels, f"python:{target}")
        shape = tuple(x0.shape)
        square = len(shape) == 3 and shape[1] == shape[2]
        info = DataInfo(
            task="classification",
            num_classes=num_classes,
            in_channels=shape[0] if square else None,
            image_size=shape[1] if square else None,
            input_shape=shape,
        )
        stratify = labels
    elif isinstance(y0, torch.Tensor) and y0.shape == x0.shape and not x0.is_floating_point():
        vocab = getattr(parts["train"], "vocab_size", None) or 1 + max(
            int(torch.as_tensor(ds[i][k]).max())
            for ds in parts.values()
            for i in range(len(ds))
            for k in (0, 1)
        )
        info = DataInfo(task="causal_lm", vocab_size=int(vocab), seq_len=int(x0.shape[0]))
        stratify = None
    else:
        raise ConfigError(
            f"dataset source python:{target}: items must be (input, integer label) or "
            "(token ids, next-token ids) of equal length"
        )
    if "val" not in parts:
        train = parts["train"]
        if stratify is None:
            order = torch.randperm(
                len(train), generator=torch.Generator().manual_seed(cfg.split_seed)
            )
            n_val = max(1, round(cfg.val_fraction * len(train)))
            val_idx, train_idx = order[:n_val].tolist(), order[n_val:].tolist()
        else:
            try:
                train_idx, val_idx = (
                    a.tolist() for a in stratified_val(stratify, cfg.val_fraction, cfg.split_seed)
                )
            except ValueError as exc:
                raise ConfigError(
                    f"python:{target}: cannot carve a validation split ({exc})"
                ) from None
        parts["train"], parts["val"] = Subset(train, train_idx), Subset(train, val_idx)

    def loader(name: str, batch_size: int, shuffle: bool, augment: bool):
        return data_loader(parts[name], batch_size, shuffle, cfg, device)

    bundle = split_bundle(info, loader, cfg, {n: len(parts[n]) for n in ("train", "val", "test")})
    groups = getattr(parts["test"], "groups", None)
    where = f"python:{target}"
    return replace(bundle, test_groups=checked_groups(groups, len(parts["test"]), where))
