"""Per-example test outcomes: the blob format, what Task.evaluate returns, and what runs store."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from prunebench.data.memory import TensorLoader
from prunebench.engine.single_run import run
from prunebench.store.database import Store
from prunebench.store.example_outcomes import pack_correct, pack_nll, unpack
from prunebench.store.results import load_results
from prunebench.tasks import make_task


def test_blobs_round_trip_and_stay_small():
    bits = np.random.default_rng(0).random(10_000) < 0.9
    blob = pack_correct(bits)
    assert len(blob) == 9 + 1250  # header + 10,000 bits
    got = unpack(blob)
    assert got.kind == "correct" and list(got.values) == list(bits.astype(float))
    nll, tokens = np.array([3.5, 10.25, 7.0]), np.array([2, 5, 4])
    got = unpack(pack_nll(nll, tokens))
    assert got.kind == "nll" and list(got.tokens) == [2, 5, 4]
    assert got.values.mean() == pytest.approx(nll.sum() / tokens.sum())  # mean token NLL
    with pytest.raises(ValueError):
        unpack(b"XYZ" + blob[3:])


def test_classification_outcomes_are_the_top1_hits_in_split_order():
    torch.manual_seed(0)
    model = nn.Linear(6, 4)
    inputs, targets = torch.randn(23, 6), torch.randint(0, 4, (23,))
    loader = TensorLoader(inputs, targets, batch_size=5)
    task = make_task("classification")
    plain = task.evaluate(model, loader, torch.device("cpu"))
    full = task.evaluate(model, loader, torch.device("cpu"), outcomes=True)
    bits = unpack(full.pop("outcomes")).values
    expected = (model(inputs).argmax(dim=1) == targets).numpy()
    assert list(bits) == list(expected.astype(float))
    assert full == plain and bits.mean() == pytest.approx(plain["top1"])


class TableLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(11, 11)

    def forward(self, ids):
        return self.table(ids)


def test_language_model_outcomes_are_per_sequence_nll_and_tokens():
    torch.manual_seed(1)
    model = TableLM()
    inputs, targets = torch.randint(0, 11, (5, 4)), torch.randint(0, 11, (5, 4))
    targets[4, 1:] = -100
    task = make_task("causal_lm")
    result = task.evaluate(model, TensorLoader(inputs, targets, batch_size=2),
                           torch.device("cpu"), outcomes=True)  # fmt: skip
    got = unpack(result["outcomes"])
    logp = torch.log_softmax(model.table.weight.detach().double(), dim=1)
    for i in range(5):
        scored = [(int(x), int(y)) for x, y in zip(inputs[i], targets[i], strict=True) if y >= 0]
        assert got.tokens[i] == len(scored)
        expected = -sum(float(logp[x, y]) for x, y in scored)
        assert got.values[i] * got.tokens.mean() == pytest.approx(expected, rel=1e-5)
    assert got.values.mean() == pytest.approx(result["loss"], rel=1e-5)


def test_runs_store_outcomes_and_reused_steps_copy_them(tiny, tmp_path):
    store = Store(tmp_path)
    quick = ("pretrain.epochs=1", "finetune.max_epochs=1")
    geometric = run(tiny("regime.target=0.8", "regime.steps=2", *quick), store)
    first_target = geometric.rows[0]["target"]
    one_shot = run(tiny("regime.name=one_shot", f"regime.target={first_target}",
                        "regime.steps=null", *quick), store)  # fmt: skip
    for row in geometric.rows:
        assert unpack(row["test_outcomes"]).values.mean() == pytest.approx(row["test_top1"])
    (copied,) = one_shot.rows
    assert copied["reused"] == 1 and copied["test_outcomes"] == geometric.rows[0]["test_outcomes"]
    plain = load_results(tmp_path)
    assert "test_outcomes" not in plain.columns  # exports stay plain tables
    blobs = load_results(tmp_path, outcomes=True)["test_outcomes"]
    assert len(blobs) == 3 and all(isinstance(b, bytes) for b in blobs)
