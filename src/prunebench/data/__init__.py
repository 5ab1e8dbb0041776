"""Datasets by name: `catalog.DATASETS` declares them, each family's module builds them.

This package's import is light (no torch): a dataset's module loads when it is built.
"""

from prunebench.data.catalog import DATASETS
from prunebench.data.info import DataInfo, DatasetSpec

__all__ = ["DATASETS", "DataInfo", "DatasetSpec"]
