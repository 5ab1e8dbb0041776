"""Datasets by name. A builder turns a DataConfig into train/val/test/calibration batch streams."""

from prunebench.data.base import DataBundle, DataInfo, DatasetSpec, take_samples
from prunebench.registry import Registry

DATASETS: Registry[DatasetSpec] = Registry("dataset")

# Each module below registers its dataset(s) on import, after the registry exists.
from prunebench.data import cifar as _cifar  # noqa: E402, F401
from prunebench.data import digits as _digits  # noqa: E402, F401
from prunebench.data import imagenet as _imagenet  # noqa: E402, F401
from prunebench.data import synthetic_stories as _synthetic_stories  # noqa: E402, F401
from prunebench.data import tinystories as _tinystories  # noqa: E402, F401

__all__ = ["DATASETS", "DataBundle", "DataInfo", "DatasetSpec", "take_samples"]
