"""Per-document outcomes of lm-eval's metrics (`lm_harness.sample_outcomes`), from samples
written by hand in the form lm-eval logs them: what a report needs to count a task's noise."""

from __future__ import annotations

import numpy as np

from prunebench.evaluation.lm_harness import sample_outcomes
from prunebench.store.example_outcomes import unpack


def doc(doc_id: int, acc: float, f1: float, filter_key: str = "none") -> dict:
    return {"doc_id": doc_id, "filter": filter_key, "metrics": ["acc", "f1"], "acc": acc,
            "f1": f1, "doc": {}, "resps": []}  # fmt: skip


def test_right_or_wrong_metrics_keep_each_document_in_order():
    samples = {
        "boolq": [doc(2, 1.0, 0.5), doc(0, 0.0, 0.25), doc(1, True, 1.0)],  # logged out of order
        "rte": [doc(0, np.int64(1), 0.0, "strict"), doc(1, np.bool_(True), 0.0, "strict")],
    }
    metrics = {"boolq/acc": 2 / 3, "boolq/f1": 7 / 12, "rte/acc,strict": 1.0}
    out = sample_outcomes(samples, metrics)
    assert set(out) == {"boolq/acc", "rte/acc,strict"}  # an F1 is not right/wrong per document
    assert unpack(out["boolq/acc"]).values.tolist() == [0.0, 1.0, 1.0]  # by doc_id
    assert unpack(out["rte/acc,strict"]).values.tolist() == [1.0, 1.0]


def test_outcomes_that_do_not_give_the_reported_value_are_not_kept():
    samples = {"boolq": [doc(0, 1.0, 0.0), doc(1, 0.0, 0.0)]}
    assert sample_outcomes(samples, {"boolq/acc": 0.75}) == {}  # 0.5 from the documents
    assert sample_outcomes(samples, {}) == {}  # a metric lm-eval did not report
