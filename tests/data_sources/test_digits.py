"""The bundled default's split: disjoint, complete, stratified, fixed by the split seed."""

from __future__ import annotations

import numpy as np

from prunebench.data.digits import split_indices


def test_split_is_disjoint_complete_stratified_and_seeded():
    labels = np.repeat(np.arange(10), 50)  # 500 samples, 50 per class
    train, val, test = split_indices(labels, (0.2, 0.1), seed=0)
    assert len(test) == 100 and len(val) == 40 and len(train) == 360
    assert sorted([*train, *val, *test]) == list(range(500))
    for part, per_class in ((test, 10), (val, 4), (train, 36)):
        assert np.bincount(labels[part], minlength=10).tolist() == [per_class] * 10
        assert list(part) == sorted(part)
    again = split_indices(labels, (0.2, 0.1), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, val, test), strict=True))
    other = split_indices(labels, (0.2, 0.1), seed=1)
    assert not np.array_equal(other[2], test)
