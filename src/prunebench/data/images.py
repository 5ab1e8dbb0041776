"""Labelled images from the user's files (folders, Hugging Face datasets, arrays) as a DataBundle.

One pool of samples with index arrays per split. Images are decoded once to uint8
(C, S, S): the shorter side resized to S, then centre-cropped. When the decoded pool fits in
`options.max_memory_mb` it is kept in memory and batches are slices (the fast path of
data/memory.py and data/transforms.py); otherwise it streams through a DataLoader and the same
batched transform runs on each batch. Normalisation is the training split's per-channel mean
and std unless `options.mean` / `options.std` are given (streamed: from up to STATS_SAMPLES
training images). Augmentation (`data.augment`): random crop with `options.padding` (default
S/8) and horizontal flip, as in the CIFAR pipeline.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prunebench.data.base import Batch, DataBundle
from prunebench.data.info import DataInfo
from prunebench.data.loaders import data_loader, split_bundle
from prunebench.data.memory import TensorLoader
from prunebench.data.splits import stratified_val
from prunebench.data.transforms import ImageBatchTransform
from prunebench.errors import ConfigError

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

STATS_SAMPLES = 2000


def count_classes(labels: np.ndarray, where: str) -> int:
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ConfigError(
            f"{where} has {len(classes)} class; classification needs at least two classes"
        )
    return int(labels.max()) + 1


def carve(labels: np.ndarray, cfg: DataConfig, test_fraction: float | None) -> dict[str, Any]:
    """Seeded, stratified index arrays: test (when `test_fraction`) then val off one pool."""
    index = np.arange(len(labels))
    out: dict[str, np.ndarray] = {}
    try:
        if test_fraction:
            rest, test = stratified_val(labels, test_fraction, cfg.split_seed)
            out["test"], index = test, rest
        train, val = stratified_val(labels[index], cfg.val_fraction, cfg.split_seed)
    except ValueError as exc:
        raise ConfigError(
            f"data.root: {len(labels)} samples are too few to carve stratified splits ({exc})"
        ) from None
    out["train"], out["val"] = index[train], index[val]
    return out


def to_pil(image: Any):
    """A PIL image from a path, PIL image, encoded bytes ({'bytes': ...} too) or an array."""
    from PIL import Image

    if isinstance(image, dict):  # a Hugging Face Image feature left undecoded
        image = image.get("bytes") or image.get("path")
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, bytes):
        return Image.open(io.BytesIO(image))
    if isinstance(image, str) or hasattr(image, "__fspath__"):
        return Image.open(image)
    array = np.asarray(image)
    return Image.fromarray(array if array.dtype == np.uint8 else array.astype(np.uint8))


def read_image(image: Any, mode: str):
    """`to_pil(image)` converted to `mode` (pixels read now); a file that is not a readable
    image (garbled, truncated, a decompression bomb) is one line naming it."""
    from PIL import Image

    try:
        return to_pil(image).convert(mode)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        where = f"'{image}'" if isinstance(image, (str, Path)) else "an image of the dataset"
        raise ConfigError(
            f"data: {where} is not a readable image ({type(exc).__name__}: {exc}); "
            "remove or replace it"
        ) from None


def native_size(image: Any) -> int:
    """The shorter side of one image: the default `data.image_size`."""
    return min(read_image(image, "RGB").size)


def decode(image: Any, size: int, channels: int) -> torch.Tensor:
    """Any image `to_pil` reads -> uint8 (C, size, size): shorter side resized, centre crop."""
    from torchvision.transforms import functional as F

    pil = read_image(image, "RGB" if channels == 3 else "L")
    return F.pil_to_tensor(F.center_crop(F.resize(pil, size), size))


class DecodedImages(torch.utils.data.Dataset):
    """Item i: (uint8 image, label) from `fetch(items[i])`."""

    def __init__(
        self,
        items: Sequence[Any],
        labels: np.ndarray,
        size: int,
        channels: int,
        fetch: Callable[[Any], Any] = lambda item: item,
    ) -> None:
        if channels not in (1, 3):
            raise ConfigError(f"data.options.channels must be 1 or 3, not {channels}")
        self.items, self.labels = items, labels
        self.size, self.channels, self.fetch = size, channels, fetch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return decode(self.fetch(self.items[i]), self.size, self.channels), int(self.labels[i])


class MappedLoader:
    """A DataLoader whose batches go through a batched transform (the streamed path)."""

    def __init__(self, loader: torch.utils.data.DataLoader, transform: ImageBatchTransform):
        self.loader, self.transform = loader, transform

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for x, y in self.loader:
            yield self.transform(x), y


def channel_stats(images: torch.Tensor, max_value: float) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (N, C, H, W) images in [0, 1] units (float64, in chunks)."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), 1024):
        chunk = images[start : start + 1024].to(torch.float64) / max_value
        total += chunk.sum(dim=(0, 2, 3))
        squares += (chunk * chunk).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.tolist(), std.tolist()


def _transforms(
    cfg: DataConfig,
    opts: dict[str, Any],
    stats: tuple[list[float], list[float]],
    size: int,
    max_value: float = 255.0,
    resize: int | None = None,
) -> tuple[ImageBatchTransform, ImageBatchTransform]:
    mean = opts["mean"] if opts["mean"] is not None else stats[0]
    std = opts["std"] if opts["std"] is not None else stats[1]
    if len(mean) != len(stats[0]) or len(std) != len(stats[0]):
        raise ConfigError(f"data.options.mean / std need {len(stats[0])} values (one per channel)")
    padding = opts["padding"] if opts["padding"] is not None else max(1, size // 8)
    common = {"size": resize, "max_value": max_value}
    return (
        ImageBatchTransform(mean, std, augment=False, **common),
        ImageBatchTransform(mean, std, augment=cfg.augment, padding=padding, **common),
    )


def tensor_bundle(
    images: torch.Tensor,
    labels: torch.Tensor,
    index: dict[str, np.ndarray],
    num_classes: int,
    cfg: DataConfig,
    opts: dict[str, Any],
    device: torch.device,
    max_value: float = 255.0,
) -> DataBundle:
    """In memory: (N, C, H, W) images (uint8, or float with `max_value`) and int64 labels;
    resized in each batch when `data.image_size` differs."""
    train_idx = torch.as_tensor(index["train"])
    stats = channel_stats(images[train_idx], max_value)
    shape = tuple(images.shape[1:])
    wanted = cfg.image_size
    resize = wanted if wanted is not None and shape[1:] != (wanted, wanted) else None
    plain, augmented = _transforms(cfg, opts, stats, shape[-1], max_value, resize)
    if resize is not None:
        shape = (shape[0], resize, resize)

    def loader(name: str, batch_size: int, shuffle: bool, augment: bool) -> TensorLoader:
        idx = torch.as_tensor(index[name])
        x, y = images[idx].to(device), labels[idx].to(device)
        transform = augmented if augment else plain
        return TensorLoader(x, y, batch_size, shuffle=shuffle, transform=transform)

    info = image_info(num_classes, shape, plain.describe())
    return split_bundle(info, loader, cfg, sizes_of(index))


def image_info(
    num_classes: int, shape: Sequence[int], preprocessing: dict[str, Any] | None = None
) -> DataInfo:
    channels, height, width = (int(d) for d in shape)
    if height != width:
        raise ConfigError(
            f"the images are {height}x{width}; set data.image_size to make them square"
        )
    return DataInfo(
        task="classification",
        num_classes=num_classes,
        in_channels=channels,
        image_size=height,
        input_shape=(channels, height, width),
        preprocessing=preprocessing,
    )


def sizes_of(index: dict[str, np.ndarray]) -> dict[str, int]:
    return {name: len(index[name]) for name in ("train", "val", "test")}


def image_bundle(
    pool: DecodedImages,
    index: dict[str, np.ndarray],
    num_classes: int,
    cfg: DataConfig,
    opts: dict[str, Any],
    device: torch.device,
) -> DataBundle:
    """Decoded into memory when it fits `options.max_memory_mb`, streamed otherwise (the same
    batched transforms on each DataLoader batch; statistics from up to STATS_SAMPLES images)."""
    nbytes = len(pool) * pool.channels * pool.size * pool.size
    if nbytes <= opts["max_memory_mb"] * 2**20:
        decoded = [pool[i] for i in range(len(pool))]
        images = torch.stack([x for x, _ in decoded])
        labels = torch.as_tensor([y for _, y in decoded], dtype=torch.long)
        bundle = tensor_bundle(images, labels, index, num_classes, cfg, opts, device)
        return replace(bundle, info=decoded_info(bundle.info, pool))
    from torch.utils.data import Subset

    generator = torch.Generator().manual_seed(cfg.split_seed)
    train = index["train"]
    picked = train[torch.randperm(len(train), generator=generator)[:STATS_SAMPLES].numpy()]
    sample = torch.stack([pool[int(i)][0] for i in picked])
    plain, augmented = _transforms(cfg, opts, channel_stats(sample, 255.0), pool.size)

    def loader(name: str, batch_size: int, shuffle: bool, augment: bool) -> MappedLoader:
        subset = Subset(pool, index[name].tolist())
        stream = data_loader(subset, batch_size, shuffle, cfg, device)
        return MappedLoader(stream, augmented if augment else plain)

    info = image_info(num_classes, (pool.channels, pool.size, pool.size), plain.describe())
    return split_bundle(decoded_info(info, pool), loader, cfg, sizes_of(index))


def decoded_info(info: DataInfo, pool: DecodedImages) -> DataInfo:
    """`info` whose preprocessing starts with the decoding of image files (mode, shorter side
    resized to the size, centre crop), so an export can read the same files."""
    decode_step = {"mode": "RGB" if pool.channels == 3 else "L", "size": pool.size}
    return replace(info, preprocessing={**(info.preprocessing or {}), "decode": decode_step})
