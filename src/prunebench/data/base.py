"""What every dataset hands to the rest of prunebench: batch streams plus a few facts
(`DataInfo`, in data/info.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from prunebench.data.info import DataInfo

Batch = tuple[torch.Tensor, torch.Tensor]


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
    # a group id per test example where examples come in groups (the document of an LM
    # sequence): stored with the outcomes, so that the report's intervals are cluster-robust
    test_groups: torch.Tensor | None = None


def take_samples(batches: Iterable[Batch], n_samples: int) -> Iterator[Batch]:
    """The first `n_samples` samples of a batch stream, the last batch cut to fit."""
    seen = 0
    for inputs, targets in batches:
        if seen >= n_samples:
            return
        keep = min(len(inputs), n_samples - seen)
        seen += keep
        yield inputs[:keep], targets[:keep]


def host_to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor (random draws, a permutation) on `device` without stalling the GPU:
    through pinned memory on CUDA (a copy from pageable memory may wait for the stream)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def to_device(batch: Any, device: torch.device) -> Batch:
    inputs, targets = batch
    return (
        inputs.to(device, non_blocking=True),
        targets.to(device, non_blocking=True),
    )
