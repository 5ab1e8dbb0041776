"""Per-example test outcomes: the blob format, what Task.evaluate returns, and what runs store."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from prunebench.data.memory import TensorLoader
from prunebench.data.text import encode_documents, pack, sequence_documents
from prunebench.engine.single_run import run
from prunebench.store.database import Store
from prunebench.store.example_outcomes import pack_correct, pack_nll, unpack, with_groups
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


def test_group_ids_travel_with_the_outcomes_and_leave_old_blobs_alone():
    bits = np.random.default_rng(2).random(37) < 0.7
    groups = np.arange(37) // 5
    plain = pack_correct(bits)
    grouped = with_groups(plain, groups)
    assert with_groups(plain, None) == plain and plain[3] == 1  # no groups: version 1 as before
    assert grouped == pack_correct(bits, groups) and grouped[3] == 2
    got = unpack(grouped)
    assert list(got.values) == list(bits.astype(float)) and list(got.groups) == list(groups)
    assert unpack(plain).groups is None
    got = unpack(pack_nll(np.array([1.0, 2.0]), np.array([3, 4]), np.array([7, 7])))
    assert list(got.groups) == [7, 7] and list(got.tokens) == [3, 4]
    with pytest.raises(ValueError):
        pack_correct(bits, groups[:-1])


def test_language_model_sequences_know_their_document():
    """Three stories of 5, 2 and 9 tokens (+ end-of-text each), packed into 4-token sequences:
    each sequence's group is the story its first input token came from."""
    stories = ["a" * 5, "b" * 2, "c" * 9]
    encode = lambda batch: [[ord(ch) for ch in s] for s in batch]  # noqa: E731
    stream, story = encode_documents(stories, encode, eos_id=0)
    assert len(stream) == len(story) == 6 + 3 + 10
    x, _ = pack(stream, 4)
    docs = sequence_documents(story, 4, len(x))
    assert list(docs) == [0, 0, 1, 2]  # tokens 0, 4, 8, 12 of a a a a a / b b / c...
    assert torch.equal(x[:, 0], stream[[0, 4, 8, 12]])
