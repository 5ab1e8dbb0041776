"""What every dataset hands to the rest of prunebench: batch streams plus a few facts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from prunebench.config import DataConfig

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DataInfo:
    """Facts a model builder needs; `task` is 'classification' or 'causal_lm'."""

    task: str
    num_classes: int | None = None
    in_channels: int | None = None
    image_size: int | None = None
    vocab_size: int | None = None
    seq_len: int | None = None  # language modelling: tokens per training sequence


@dataclass
class DataBundle:
    """Batch streams. `train` reshuffles (from torch's global RNG) on every iteration;
    `calibration` is the train split without augmentation, for data-dependent criteria."""

    info: DataInfo
    train: Iterable[Batch]
    val: Iterable[Batch]
    test: Iterable[Batch]
    calibration: Iterable[Batch]
    sizes: dict[str, int]


@dataclass(frozen=True)
class DatasetSpec:
    build: Callable[[DataConfig, torch.device], DataBundle]
    task: str
    needs_root: bool = False
    description: str = ""


def take_samples(batches: Iterable[Batch], n_samples: int) -> Iterator[Batch]:
    """The first `n_samples` samples of a batch stream, the last batch cut to fit."""
    seen = 0
    for inputs, targets in batches:
        if seen >= n_samples:
            return
        keep = min(len(inputs), n_samples - seen)
        seen += keep
        yield inputs[:keep], targets[:keep]


def to_device(batch: Any, device: torch.device) -> Batch:
    inputs, targets = batch
    return (
        inputs.to(device, non_blocking=True),
        targets.to(device, non_blocking=True),
    )
