"""Issue 23 through the command line: a user's own model that flattens with `.view` trains, and
the checks a run makes are made by every command that reads a config."""

from __future__ import annotations

from own_data import run_own_model
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
    code, out, err = run_own_model(
        invoke, tmp_path, "lenet", VIEW_MODEL,
        "device: cpu\nmodel: {name: 'python:lenet.py:build'}\n"
        "pretrain: {epochs: 2}\nfinetune: {max_epochs: 1}\n",
    )  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err and "pruning steps" in out
    df = load_results(tmp_path / "r")
    assert set(df["status"]) == {"done"} and df["step"].max() >= 1


def test_an_inline_hf_config_mapping_is_validated_without_a_traceback(invoke):
    """Issue 23: `model.options.config` given as a mapping went through pathlib."""
    mapping = "model.options.config={architectures: [GPT2LMHeadModel], model_type: gpt2}"
    code, _, err = invoke("config", "show", "-s", "model.name=hf", "-s", mapping)
    assert code == 2 and "Traceback" not in err
    assert "is a causal_lm model but dataset 'digits' is a classification dataset" in err
    code, out, err = invoke(
        "config", "show", "-s", "model.name=hf", "-s", "model.options.config={model_type: vit}"
    )
    assert code == 0, err
    assert "model_type: vit" in out
    code, _, err = invoke("config", "show", "-s", "model.name=hf", "-s", "model.options.config=3")
    assert code == 2 and "config.json or the config as a mapping, not int" in err


def test_config_show_and_every_dry_run_refuse_a_misspelt_timm_name(tmp_path, invoke):
    """Issue 23: only the estimating dry run and the run refused it."""
    message = "timm has no classification model 'resnet18x' (did you mean 'resnet18'?)"
    code, _, err = invoke("config", "show", "-s", "model.name=timm:resnet18x")
    assert code == 2 and message in err
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("set: {device: cpu, model.name: 'timm:resnet18x'}\n")
    for extra in ([], ["--no-estimate"]):
        code, out, err = invoke("sweep", str(sweep), "-r", str(tmp_path / "r"), "--dry-run", *extra)
        assert code == 2 and message in err and out == ""
