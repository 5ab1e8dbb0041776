"""Discovering what exists: `prunebench list`, `prunebench config show`, `prunebench --version`."""

from __future__ import annotations

from pathlib import Path

import yaml

import prunebench
from prunebench.config.identity import run_id
from prunebench.config.loading import load_run_config
from prunebench.config.schema import RunConfig


def test_list_models_searches_registered_torchvision_and_timm_names(invoke):
    code, out, _ = invoke("list", "models", "MobileNetV2")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert "timm:mobilenetv2_100" in names
    code, out, _ = invoke("list", "models", "mobilenet_v")
    names = [line.split()[0] for line in out.splitlines()]
    assert {"torchvision:mobilenet_v2", "torchvision:mobilenet_v3_small"} <= set(names)
    assert all("mobilenet_v" in n for n in names)
    code, out, _ = invoke("list", "models")
    names = [line.split()[0] for line in out.splitlines()]
    assert {"resnet18_cifar", "hf", "python:FILE.py:FUNCTION", "torchvision:alexnet"} <= set(names)
    assert sum(n.startswith("timm:") for n in names) > 1000


def test_list_the_other_kinds(invoke):
    expected = {
        "datasets": {"image_folder", "arrays", "hf_dataset", "cifar10", "python:FILE.py:FUNCTION"},
        "criteria": {"magnitude", "taylor", "hessian", "wanda"},
        "presets": {"resnet18_table2_model1"},
        "regimes": {"one_shot", "hybrid", "geometric"},
    }
    for kind, names in expected.items():
        code, out, _ = invoke("list", kind)
        assert code == 0
        assert names <= {line.split()[0] for line in out.splitlines()}, kind
    code, out, _ = invoke("list", "criteria", "wanda")
    assert out.strip() == "wanda  |W|·||X|| per input feature; unstructured; reads calibration data"
    code, out, _ = invoke("list", "criteria", "hessian")
    assert "empirical Fisher diagonal" in out


def test_list_errors_are_one_line(invoke):
    code, _, err = invoke("list", "modles")
    assert code == 2 and "did you mean 'models'?" in err and len(err.strip().splitlines()) == 1
    code, _, err = invoke("list", "models", "no-such-model-anywhere")
    assert code == 2 and "no models match 'no-such-model-anywhere'" in err


def test_config_show_prints_every_default_and_the_run_id(invoke):
    code, out, _ = invoke(
        "config", "show", "configs/digits.yaml", "--set", "model.name=torchvision:resnet18"
    )
    assert code == 0
    first, _, body = out.partition("\n")
    shown = yaml.safe_load(body)
    cfg = load_run_config(Path("configs/digits.yaml"), ["model.name=torchvision:resnet18"])
    assert shown == cfg.model_dump(mode="json")
    assert RunConfig.model_validate(shown) == cfg
    assert first == f"# run id: {run_id(cfg)}"
    assert shown["finetune"]["patience"] == 3  # a default the file does not set
    code, _, err = invoke("config", "show", "--set", "regime.target=2")
    assert code == 2 and "target must be in (0, 1)" in err


def test_version(invoke):
    code, out, _ = invoke("--version")
    assert code == 0 and out.strip() == f"prunebench {prunebench.__version__}"
