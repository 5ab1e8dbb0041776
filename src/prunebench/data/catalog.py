"""The registered datasets, declared without importing them (config validation stays light).

Each entry names the module attribute holding its `DatasetSpec` and the facts a config check
needs: its task and whether it reads `data.root`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prunebench.registry import Registry

if TYPE_CHECKING:
    from prunebench.data.info import DatasetSpec

DATASETS: Registry[DatasetSpec] = Registry("dataset")

IMAGES = {"task": "classification"}
TEXT = {"task": "causal_lm"}
DATASETS.declare("cifar10", "prunebench.data.cifar:CIFAR10_SPEC", needs_root=True, **IMAGES)
DATASETS.declare("cifar100", "prunebench.data.cifar:CIFAR100_SPEC", needs_root=True, **IMAGES)
DATASETS.declare("digits", "prunebench.data.digits:SPEC", needs_root=False, **IMAGES)
DATASETS.declare("imagenet", "prunebench.data.imagenet:SPEC", needs_root=True, **IMAGES)
DATASETS.declare(
    "synthetic_stories", "prunebench.data.synthetic_stories:SPEC", needs_root=False, **TEXT
)
DATASETS.declare("tinystories", "prunebench.data.tinystories:SPEC", needs_root=True, **TEXT)
