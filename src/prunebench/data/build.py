"""Building a dataset from its config: `dataset_spec` turns `data.name` (a registered name or
a `python:` source) into the one DatasetSpec the rest of the package uses."""

from __future__ import annotations

import torch

from prunebench.config.schema import DataConfig
from prunebench.config.source_names import DATA_KINDS, parse
from prunebench.data.base import DataBundle
from prunebench.data.catalog import DATASETS
from prunebench.data.info import DatasetSpec
from prunebench.data.python_source import python_dataset_spec


def dataset_spec(cfg: DataConfig) -> DatasetSpec:
    source = parse(cfg.name, DATA_KINDS)
    if source.registered:
        return DATASETS.get(cfg.name)
    return python_dataset_spec(source.target)


def build_data(cfg: DataConfig, device: torch.device) -> DataBundle:
    """The data bundle `cfg` describes, on `device`."""
    return dataset_spec(cfg).build(cfg, device)
