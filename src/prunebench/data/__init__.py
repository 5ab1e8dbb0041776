"""Datasets by name. A builder turns a DataConfig into train/val/test/calibration batch streams."""

from prunebench.data.base import DataBundle, DataInfo, DatasetSpec, take_samples
from prunebench.registry import Registry

DATASETS: Registry[DatasetSpec] = Registry("dataset")

from prunebench.data import digits as _digits  # noqa: E402,F401  (registers itself)

__all__ = ["DATASETS", "DataBundle", "DataInfo", "DatasetSpec", "take_samples"]
