"""The registered datasets, declared without importing them (config validation stays light).

Each entry names the module attribute holding its `DatasetSpec` and the facts a config check
needs: its task and whether it reads `data.root`. A task of None means the options decide
(`declared_task`). `python:FILE_OR_MODULE:FUNCTION` names the user's own datasets without
registering anything (data/python_source.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prunebench.config.source_names import DATA_KINDS, parse
from prunebench.registry import Registry

if TYPE_CHECKING:
    from prunebench.data.info import DatasetSpec

DATASETS: Registry[DatasetSpec] = Registry("dataset")

IMAGES = {"task": "classification"}
TEXT = {"task": "causal_lm"}
DATASETS.declare("arrays", "prunebench.data.arrays:SPEC", needs_root=True, **IMAGES)
DATASETS.declare("cifar10", "prunebench.data.cifar:CIFAR10_SPEC", needs_root=True, **IMAGES)
DATASETS.declare("cifar100", "prunebench.data.cifar:CIFAR100_SPEC", needs_root=True, **IMAGES)
DATASETS.declare("digits", "prunebench.data.digits:SPEC", needs_root=False, **IMAGES)
DATASETS.declare("hf_dataset", "prunebench.data.hf_dataset:SPEC", needs_root=True, task=None)
DATASETS.declare("image_folder", "prunebench.data.folders:SPEC", needs_root=True, **IMAGES)
DATASETS.declare("imagenet", "prunebench.data.imagenet:SPEC", needs_root=True, **IMAGES)
DATASETS.declare(
    "synthetic_stories", "prunebench.data.synthetic_stories:SPEC", needs_root=False, **TEXT
)
DATASETS.declare("tinystories", "prunebench.data.tinystories:SPEC", needs_root=True, **TEXT)


def declared_task(name: str, options: dict[str, Any]) -> str | None:
    """The task of `data.name` known without loading anything; None: the data decides (a
    python dataset). `hf_dataset` is a causal-LM corpus when `options.text_column` is set."""
    if not parse(name, DATA_KINDS).registered:
        return None
    task = DATASETS.fact(DATASETS.check(name), "task")
    if task is None and name == "hf_dataset":
        return "causal_lm" if options.get("text_column") else "classification"
    return task


def needs_root(name: str) -> bool:
    source = parse(name, DATA_KINDS)
    return source.registered and bool(DATASETS.fact(DATASETS.check(name), "needs_root"))
