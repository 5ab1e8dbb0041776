"""scikit-learn's bundled digits (1,797 real 8x8 images): the offline default dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from prunebench.data.base import DataBundle
from prunebench.data.info import DataInfo, DatasetSpec
from prunebench.data.memory import TensorLoader
from prunebench.data.options import dataset_options
from prunebench.data.splits import stratified_val

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

TEST_FRACTION = 0.2
# Pixel values are 0..16; these are the training-set statistics rounded.
MEAN, STD = 4.88, 6.02


def split_indices(
    labels: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified (train, val, test) index arrays: test first, then val out of the rest."""
    test_fraction, val_fraction = fractions
    rest, test = stratified_val(labels, test_fraction, seed)
    train, val = stratified_val(labels[rest], val_fraction, seed)
    return rest[train], rest[val], test


def build_digits(cfg: DataConfig, device: torch.device) -> DataBundle:
    from sklearn.datasets import load_digits

    dataset_options("digits", cfg.options, {})
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    images = ((images - MEAN) / STD).to(device)
    labels = torch.tensor(digits.target, dtype=torch.long).to(device)
    train, val, test = split_indices(
        digits.target, (TEST_FRACTION, cfg.val_fraction), cfg.split_seed
    )

    def loader(index: np.ndarray, batch_size: int, shuffle: bool) -> TensorLoader:
        idx = torch.as_tensor(index, device=device)
        return TensorLoader(images[idx], labels[idx], batch_size, shuffle=shuffle)

    return DataBundle(
        info=DataInfo(task="classification", num_classes=10, in_channels=1, image_size=8),
        train=loader(train, cfg.batch_size, shuffle=True),
        val=loader(val, cfg.eval_batch_size, shuffle=False),
        test=loader(test, cfg.eval_batch_size, shuffle=False),
        calibration=loader(train, cfg.batch_size, shuffle=True),
        sizes={"train": len(train), "val": len(val), "test": len(test)},
    )


SPEC = DatasetSpec(
    build=build_digits,
    task="classification",
    description="scikit-learn's bundled 8x8 digits, 10 classes (offline default)",
)
