"""CIFAR-10-shaped synthetic data in torchvision's on-disk format, so that benchmarks go through
prunebench's real CIFAR builder (uint8 tensors on the device, batched augmentation)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"


def write_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """`root` holding cifar-10-batches-py/ with n_train random images in 5 batches and n_test in
    the test batch; labels cycle through the 10 classes. Returns `root` (for data.root)."""
    rng = np.random.default_rng(seed)
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [n_train // 5 + (i < n_train % 5) for i in range(5)]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, n in zip(names, [*sizes, n_test], strict=True):
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "labels": [int(i % 10) for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    return root
