"""What every dataset hands to the rest of prunebench: batch streams plus a few facts
(`DataInfo`, in data/info.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from prunebench.data.info import DataInfo
from prunebench.errors import ConfigError

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
    # the text tokenizer (a transformers tokenizer) of a language-modelling dataset: what the
    # evaluations of `eval:` tokenize their text files and tasks with (evaluation/)
    tokenizer: Any = None


def checked_groups(groups: Any, n: int, where: str) -> torch.Tensor | None:
    """A group id per test example (ints, or names numbered in sorted order), or None; a
    ConfigError naming `where` when there is not one per example."""
    if groups is None:
        return None
    array = np.asarray(groups)
    if array.ndim != 1 or array.size != n:
        raise ConfigError(
            f"{where}: the test groups have shape {array.shape}; give one group id per test "
            f"example ({n})"
        )
    return torch.from_numpy(np.unique(array.astype(str), return_inverse=True)[1].astype(np.int64))


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
