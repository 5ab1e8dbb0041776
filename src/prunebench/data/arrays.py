"""Inputs and labels from NumPy files (`data.name=arrays`): images or feature vectors.

`data.root` is an `.npz` file or a folder of `.npy` files. Arrays are named `x` / `y`
(`options.inputs` / `options.labels` rename them): with `x_train`, `y_train`, `x_test`, `y_test`
(and optionally `x_val`, `y_val`) the splits are given, with `x` and `y` test and validation
splits are carved, stratified and seeded. Inputs of shape (N, C, H, W), (N, H, W, C) or (N, H, W)
are images (uint8 0..255 or floats; `options.layout` forces nchw/nhwc), (N, F) feature vectors.
`options.groups` names an array of group ids (`G_test` with given splits, else `G` for all
samples): the scene, document or patient each example comes from, so that the report's intervals
are cluster-robust. Labels are integer classes 0..K-1 (shape (N,) or (N, 1)) or class names (numbered in sorted
order). Files are read with `allow_pickle=False`: no code runs.
Everything is kept in memory; images go through data/images.py (normalisation from the training
split, crop/flip augmentation), feature vectors are standardised with the training split's
per-feature mean and std.
"""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prunebench.data.base import DataBundle, checked_groups
from prunebench.data.images import carve, count_classes, sizes_of, tensor_bundle
from prunebench.data.info import DataInfo, DatasetSpec
from prunebench.data.loaders import split_bundle
from prunebench.data.memory import TensorLoader
from prunebench.data.options import OPTION_DEFAULTS, dataset_options
from prunebench.errors import ConfigError, without_unsafe_advice

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

DEFAULTS = OPTION_DEFAULTS["arrays"]


def read_arrays(root: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file or of a folder's .npy files, by name (no pickle)."""
    try:
        if root.is_dir():
            return {p.stem: np.load(p, allow_pickle=False) for p in sorted(root.glob("*.npy"))}
        if root.suffix != ".npz":
            raise ConfigError(f"data.root: '{root}' is neither an .npz file nor a folder of .npy")
        with np.load(root, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:  # object arrays need pickle: refused
        reason = without_unsafe_advice(str(exc)) or "it holds pickled Python objects"
        raise ConfigError(
            f"data.root: '{root}' cannot be read as plain NumPy arrays ({reason}); save numbers "
            "or strings with np.savez / np.save (no pickle is ever loaded)"
        ) from None


def pick(arrays: dict[str, np.ndarray], opts: dict[str, Any], root: Path):
    """{split: (inputs, labels)}: given splits, or 'all' to carve from; none of them empty."""
    picked = _pick(arrays, opts, root)
    for split, pair in picked.items():
        for array in pair:
            if array.ndim == 0 or len(array) == 0:
                raise ConfigError(
                    f"data.root: '{root}' holds an empty {_split(split)}array (shape "
                    f"{array.shape}); every split needs examples"
                )
    return picked


def _pick(arrays: dict[str, np.ndarray], opts: dict[str, Any], root: Path):
    x, y = opts["inputs"], opts["labels"]
    named = ", ".join(sorted(arrays)) or "none"
    if f"{x}_train" in arrays:
        out = {}
        for split in ("train", "test", "val"):
            xs, ys = f"{x}_{split}", f"{y}_{split}"
            if xs in arrays or split != "val":
                for key in (xs, ys):
                    if key not in arrays:
                        raise ConfigError(
                            f"data.root: '{root}' has {x}_train but no '{key}' (arrays: {named})"
                        )
                out[split] = (arrays[xs], arrays[ys])
        return out
    for key in (x, y):
        if key not in arrays:
            raise ConfigError(
                f"data.root: '{root}' has no array '{key}' (arrays: {named}); name them x and y "
                "(or x_train, y_train, x_test, y_test), or set data.options.inputs / labels"
            )
    return {"all": (arrays[x], arrays[y])}


def _split(name: str) -> str:
    return "" if name == "all" else f"{name} "


def class_labels(labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Integer classes per split: integer labels as they are (shape (N,) or (N, 1)); text or
    boolean labels numbered in sorted order over all splits (so 'cat' is the same class in
    train and test)."""
    flat = {}
    for name, y in labels.items():
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ConfigError(
                f"data.root: the {_split(name)}labels have shape {y.shape}; give one class per "
                "input (shape (N,)), not one-hot rows"
            )
        flat[name] = y
    if all(y.dtype.kind in "USb" for y in flat.values()):
        classes = np.unique(np.concatenate([y.astype(str) for y in flat.values()]))
        return {name: np.searchsorted(classes, y.astype(str)) for name, y in flat.items()}
    out = {}
    for name, y in flat.items():
        if y.dtype.kind == "f":
            wrong = y[~np.isfinite(y) | (y != np.round(y))]
            if len(wrong):
                raise ConfigError(
                    f"data.root: the {_split(name)}labels must be one integer class each (or "
                    f"class names), not values such as {wrong[0].item()!r}"
                )
        elif y.dtype.kind not in "iu":
            raise ConfigError(
                f"data.root: the {_split(name)}labels are {y.dtype}; give integer classes or "
                "class names"
            )
        out[name] = y.astype(np.int64)
    return out


def as_images(x: np.ndarray, layout: str) -> np.ndarray:
    """(N, C, H, W) from NCHW, NHWC or (N, H, W)."""
    if x.ndim == 3:
        return x[:, None]
    if layout == "auto":
        layout = "nhwc" if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4) else "nchw"
    if layout not in ("nchw", "nhwc"):
        raise ConfigError(f"data.options.layout must be auto, nchw or nhwc, not '{layout}'")
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "nhwc" else x


def image_tensor(x: np.ndarray, layout: str) -> torch.Tensor:
    """(N, C, H, W) pixels as stored: uint8 kept, anything else float32 (see `as_images`)."""
    images = torch.from_numpy(as_images(x, layout))
    return images if images.dtype == torch.uint8 else images.float()


def build_arrays(cfg: DataConfig, device: torch.device) -> DataBundle:
    opts = dataset_options("arrays", cfg.options, DEFAULTS)
    root = cfg.root
    if root is None:
        raise ConfigError("data.root must point at an .npz file or a folder of .npy files")
    arrays = read_arrays(root)
    parts = pick(arrays, opts, root)
    named = class_labels({name: y for name, (_, y) in parts.items()})
    xs, ys, positions = [], [], {}
    for name, (x, _) in parts.items():
        y = named[name]
        if len(x) != len(y):
            raise ConfigError(f"data.root: {name} has {len(x)} inputs but {len(y)} labels")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise ConfigError(f"data.root: the {_split(name)}inputs hold NaN or infinite values")
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise ConfigError(
                f"data.root: the {_split(name)}inputs are {x.dtype}, not numbers; give integer "
                "or floating-point arrays"
            )
        start = sum(len(a) for a in xs)
        xs.append(x)
        ys.append(y)
        positions[name] = np.arange(start, start + len(x))
    shapes = {a.shape[1:] for a in xs}
    if len(shapes) != 1:
        raise ConfigError(f"data.root: the splits' inputs differ in shape: {sorted(shapes)}")
    inputs, labels = np.concatenate(xs), np.concatenate(ys)
    if inputs.ndim not in (2, 3, 4):
        raise ConfigError(
            f"data.root: inputs of shape {inputs.shape[1:]} per sample are neither images "
            "(C, H, W) / (H, W, C) / (H, W) nor feature vectors (F,)"
        )
    if labels.min() < 0:
        raise ConfigError("data.root: labels must be classes 0..K-1")
    num_classes = count_classes(labels, f"data.root: '{root}'")
    if "all" in positions:
        index = carve(labels, cfg, opts["test_fraction"])
    else:
        index = {"train": positions["train"], "test": positions["test"]}
        if "val" in positions:
            index["val"] = positions["val"]
        else:
            carved = carve(labels[positions["train"]], cfg, None)
            train = positions["train"]
            index["train"], index["val"] = train[carved["train"]], train[carved["val"]]
    y = torch.from_numpy(labels)
    total = len(labels) if "all" in positions else None
    groups = test_groups(arrays, opts["groups"], index["test"], total, root)
    if inputs.ndim == 2:
        bundle = vector_bundle(torch.from_numpy(inputs).float(), y, index, num_classes, cfg,
                               device)  # fmt: skip
        return replace(bundle, test_groups=groups)
    images = image_tensor(inputs, opts["layout"])
    max_value = 255.0 if images.dtype == torch.uint8 else 1.0
    bundle = tensor_bundle(images, y, index, num_classes, cfg, opts, device, max_value)
    steps = {**(bundle.info.preprocessing or {}), "layout": opts["layout"]}
    return replace(bundle, info=replace(bundle.info, preprocessing=steps), test_groups=groups)


def test_groups(
    arrays: dict[str, np.ndarray],
    name: str | None,
    test: np.ndarray,
    total: int | None,
    root: Path,
) -> torch.Tensor | None:
    """The group id of each test example from the array `options.groups` names (G_test with
    given splits; G for all `total` samples when the splits are carved), or None."""
    if name is None:
        return None
    key = name if total is not None else f"{name}_test"
    if key not in arrays:
        known = ", ".join(sorted(arrays))
        raise ConfigError(f"data.options.groups: '{root}' has no array '{key}' (arrays: {known})")
    groups = arrays[key]
    if total is not None:
        groups = checked_groups(groups, total, "data.options.groups")[torch.as_tensor(test)]
    return checked_groups(groups, len(test), "data.options.groups")


class Standardize:
    """(x - mean) / std per feature (the training split's statistics)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean, std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        return (x - self.mean) / self.std

    def describe(self) -> dict[str, object]:
        """What DataInfo.preprocessing records (export/preprocess.py replays it)."""
        return {"kind": "standardize", "mean": self.mean.tolist(), "std": self.std.tolist()}


def vector_bundle(
    x: torch.Tensor,
    y: torch.Tensor,
    index: dict[str, np.ndarray],
    num_classes: int,
    cfg: DataConfig,
    device: torch.device,
) -> DataBundle:
    train = x[torch.as_tensor(index["train"])].double()
    std = train.std(dim=0, unbiased=False)
    transform = Standardize(
        train.mean(dim=0).float(), torch.where(std > 0, std, torch.ones_like(std)).float()
    )

    def loader(name: str, batch_size: int, shuffle: bool, augment: bool) -> TensorLoader:
        idx = torch.as_tensor(index[name])
        return TensorLoader(
            x[idx].to(device), y[idx].to(device), batch_size, shuffle=shuffle, transform=transform
        )

    info = DataInfo(
        task="classification",
        num_classes=num_classes,
        input_shape=(x.shape[1],),
        preprocessing=transform.describe(),
    )
    return split_bundle(info, loader, cfg, sizes_of(index))


SPEC = DatasetSpec(
    build=build_arrays,
    task="classification",
    needs_root=True,
    description="NumPy arrays (.npz or .npy files): images or feature vectors with labels",
)
