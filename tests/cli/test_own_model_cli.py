"""Issue 23 through the command line: a user's own model that flattens with `.view` trains, and
the checks a run makes are made by every command that reads a config."""

from __future__ import annotations

import textwrap

from prunebench.store.results import load_results

VIEW_MODEL = """
import torch
from torch import nn


class LeNet(nn.Module):
    def __init__(self, channels, classes):
        super().__init__()
        self.conv = nn.Conv2d(channels, 6, 3)
        self.fc = nn.Linear(6 * 6 * 6, classes)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))  # fails on channels_last activations


def build(info):
    return LeNet(info.in_channels, info.num_classes)
"""


def test_a_view_flattening_cnn_trains_through_the_cli(tmp_path, invoke, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet.py").write_text(textwrap.dedent(VIEW_MODEL))
    (tmp_path / "run.yaml").write_text(
        "device: cpu\nmodel: {name: 'python:lenet.py:build'}\n"
        "pretrain: {epochs: 2}\nfinetune: {max_epochs: 1}\n"
    )
    code, out, err = invoke("run", "run.yaml", "-r", str(tmp_path / "r"), "-q")
    assert code == 0, err
    assert "Traceback" not in err and "pruning steps" in out
    df = load_results(tmp_path / "r")
    assert set(df["status"]) == {"done"} and df["step"].max() >= 1
