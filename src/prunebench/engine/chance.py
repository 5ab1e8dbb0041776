"""Chance level: the test metric of a model that learned nothing useful, for the sanity gates
(issue 23: a sweep whose models sat at chance still recommended a regime).

Classification: always answering the test split's majority class (its top-1 accuracy, a
fraction). Language modelling: a uniform distribution over the vocabulary (its perplexity is
the vocabulary size). Computed once per data bundle from the test labels.
"""

from __future__ import annotations

import weakref
from collections import Counter

import torch

from prunebench.data.base import DataBundle

# id(bundle) -> (a weak reference to it, its chance level); bundles are not hashable
_CACHE: dict[int, tuple[weakref.ref, float | None]] = {}


def chance_metric(data: DataBundle, task: str) -> float | None:
    """The headline test metric at chance for `task`; None when it cannot be told."""
    held = _CACHE.get(id(data))
    if held is None or held[0]() is not data:
        for key in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
            del _CACHE[key]
        held = (weakref.ref(data), _compute(data, task))
        _CACHE[id(data)] = held
    return held[1]


def _compute(data: DataBundle, task: str) -> float | None:
    if task == "causal_lm":
        return float(data.info.vocab_size) if data.info.vocab_size else None
    if task != "classification":
        return None
    counts: Counter[int] = Counter()
    for batch in data.test:
        targets = batch[1]
        if not isinstance(targets, torch.Tensor):
            return None
        counts.update(targets.reshape(-1).tolist())
    total = sum(counts.values())
    return max(counts.values()) / total if total else None
