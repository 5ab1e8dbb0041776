"""Seeded, stratified validation splits carved from a training set (the test set stays untouched)."""

from __future__ import annotations

import numpy as np


def stratified_val(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) index arrays, sorted; every class keeps its share in both."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train, val = train_test_split(index, test_size=fraction, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(val)
