"""Issue 23: chance-level detection. A model that cannot learn is flagged by `results`, the
report and `advise`, and no regime is recommended among collapsed runs."""

from __future__ import annotations

from collections import Counter

import pytest

from own_data import run_own_model
from prunebench.config.loading import load_run_config
from prunebench.data.digits import build_digits
from prunebench.report.build import build_document
from prunebench.report.sanity import clearly_above_chance, collapsed_runs, sanity_warnings
from prunebench.store.results import load_results

BLIND_MODEL = """
from torch import nn


class Blind(nn.Module):
    '''Sees nothing of its input: it can only learn the class frequencies.'''

    def __init__(self, classes):
        super().__init__()
        self.fc = nn.Linear(4, classes)

    def forward(self, x):
        return self.fc(x.new_zeros(x.shape[0], 4))


def build(info):
    return Blind(info.num_classes)
"""


def test_clearly_above_chance_needs_a_margin():
    assert clearly_above_chance(0.30, 0.10) and not clearly_above_chance(0.11, 0.10)
    # at least 2 pp above chance, and a tenth of the way from chance to 100 %
    assert not clearly_above_chance(0.91, 0.90) and clearly_above_chance(0.93, 0.90)
    assert not clearly_above_chance(0.54, 0.50) and clearly_above_chance(0.56, 0.50)
    assert clearly_above_chance(50.0, 1000.0, higher_is_better=False)
    assert not clearly_above_chance(950.0, 1000.0, higher_is_better=False)


def test_a_model_that_cannot_learn_is_flagged_and_never_recommended(tmp_path, invoke, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_own_model(
        invoke, tmp_path, "blind", BLIND_MODEL,
        "device: cpu\nmodel: {name: 'python:blind.py:build'}\n"
        "pretrain: {epochs: 2}\nfinetune: {max_epochs: 1}\nregime: {name: one_shot, target: 0.5}\n"
        "prune: {latency: false}\n",
    )  # fmt: skip
    assert code == 0, err
    df = load_results(tmp_path / "r")
    data = build_digits(load_run_config(None, []).data, "cpu")
    labels = Counter(int(y) for _, ys in data.test for y in ys)
    majority = max(labels.values()) / sum(labels.values())
    assert df["chance_metric"].iloc[0] == pytest.approx(majority)
    assert set(collapsed_runs(df)) == set(df["run_id"])
    assert any("is not clearly above chance" in w for w in sanity_warnings(df))
    code, _, err = invoke("results", "r")
    assert code == 0 and "collapsed to chance" in err and "not clearly above chance" in err
    code, out, _ = invoke("advise", "r")
    assert code == 0 and "no regime is recommended" in out and "warning: the dense model" in out
    code, out, err = invoke("report", "r")
    assert code == 0, err
    assert "WARNING: the dense model" in (tmp_path / "r" / "report" / "report.md").read_text()


HALF_DEAD_MODEL = """
import torch
from torch import nn


class HalfDead(nn.Module):
    '''A side layer whose weights are zero and frozen: the first thing magnitude pruning takes.'''

    def __init__(self, features, classes):
        super().__init__()
        self.body = nn.Linear(features, 32)
        self.side = nn.Linear(features, 32)
        nn.init.zeros_(self.side.weight)
        self.side.weight.requires_grad_(False)
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        return self.head(torch.relu(self.body(x) + self.side(x)))


def build(info):
    return HalfDead(info.input_shape[0], info.num_classes)
"""


def test_a_layer_reduced_to_nothing_is_flagged(tmp_path, invoke, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    np.savez(tmp_path / "data.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    code, _, err = run_own_model(
        invoke, tmp_path, "halfdead", HALF_DEAD_MODEL,
        "device: cpu\nmodel: {name: 'python:halfdead.py:build'}\n"
        "data: {name: arrays, root: data.npz, batch_size: 16}\n"
        "pretrain: {epochs: 2, patience: null}\nfinetune: {mode: fixed, epochs: 1}\n"
        "regime: {name: one_shot, target: 0.5}\nprune: {latency: false}\n",
    )  # fmt: skip
    assert code == 0, err
    df = load_results(tmp_path / "r")
    # 'side' holds 128 of the 384 prunable weights, all zero: a 50 % global cut takes them all
    assert "reduced 1 layer(s) to nothing (every weight pruned: side.weight)" in err
    assert sanity_warnings(df) == []  # without the directory no checkpoint is read
    for command in ("results", "advise"):
        code, out, err = invoke(command, "r")
        assert code == 0, err
        assert "side.weight" in out + err, command
    # the report's opening (build_document is what `prunebench report` writes out)
    doc = build_document(load_results(tmp_path / "r", outcomes=True), "r", directory="r")
    assert any("side.weight" in line for line in doc.intro)
    # a damaged checkpoint is verify's to report: the tables still print, unjudged
    for checkpoint in (tmp_path / "r").rglob("*.safetensors"):
        checkpoint.write_bytes(b"not a safetensors file")
    assert not any("side.weight" in line for line in sanity_warnings(df, tmp_path / "r"))
    code, out, err = invoke("results", "r")
    assert code == 0 and "side.weight" not in out + err, err
