"""Building a DataBundle's four streams, shared by the user-data sources (images, arrays,
python datasets): one rule for which split is shuffled and augmented."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from prunebench.data.base import Batch, DataBundle
from prunebench.data.info import DataInfo

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig


def split_bundle(
    info: DataInfo,
    loader: Callable[[str, int, bool, bool], Iterable[Batch]],
    cfg: DataConfig,
    sizes: dict[str, int],
) -> DataBundle:
    """A bundle from `loader(split, batch_size, shuffle, augment)`: train shuffled and
    augmented, val and test in order, calibration the train split without augmentation."""
    return DataBundle(
        info=info,
        train=loader("train", cfg.batch_size, True, True),
        val=loader("val", cfg.eval_batch_size, False, False),
        test=loader("test", cfg.eval_batch_size, False, False),
        calibration=loader("train", cfg.batch_size, True, False),
        sizes=sizes,
    )


def data_loader(
    dataset: Any, batch_size: int, shuffle: bool, cfg: DataConfig, device: torch.device
) -> DataLoader:
    """A DataLoader with `data.num_workers` workers (pinned memory on CUDA); its sampler draws
    from torch's global RNG, so a seeded step sees the same order."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.num_workers > 0,
    )
