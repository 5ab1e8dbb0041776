"""In-memory datasets kept as tensors on the device: batches are slices, never per-sample work."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from prunebench.data.base import Batch, host_to_device

BatchTransform = Callable[[torch.Tensor], torch.Tensor]


class TensorLoader:
    """Batches of (inputs, targets) sliced from device tensors.

    Shuffling draws a permutation from torch's global CPU RNG, so a seeded step sees the same
    order on every device. `transform` runs on whole batches (e.g. crop/flip/normalize).
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        transform: BatchTransform | None = None,
    ) -> None:
        if len(inputs) != len(targets):
            raise ValueError("inputs and targets differ in length")
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.inputs)
        order = host_to_device(torch.randperm(n), self.inputs.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                x = self.inputs[start : start + self.batch_size]
                y = self.targets[start : start + self.batch_size]
            else:
                # index_select, not inputs[index]: ~25x faster for uint8 images on the CPU
                index = order[start : start + self.batch_size]
                x, y = self.inputs.index_select(0, index), self.targets.index_select(0, index)
            yield (self.transform(x) if self.transform is not None else x), y
