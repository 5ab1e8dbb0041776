"""MACs (dense and nonzero-weighted) and latency, checked against hand counts."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from prunebench import measure
from prunebench.config.loading import load_run_config
from prunebench.data import DataInfo
from prunebench.measure import (
    compare_latency,
    count_macs,
    latency_pair,
    nonzero_macs,
    repeat_batch,
)
from prunebench.models import MODELS
from prunebench.pruning.factory import make_pruner
from sweep_helpers import env

DIGITS = DataInfo("classification", num_classes=10, in_channels=1, image_size=8)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # 8x8x4 outputs x 9 MACs
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2),  # 4x4x4 outputs x (2*9)
        nn.Flatten(),
        nn.Linear(64, 10),  # 64 x 10
    )


def test_count_macs_matches_the_hand_count():
    count = count_macs(small_net(), torch.zeros(1, 1, 8, 8))
    assert count.layers == {"0": 64 * 4 * 9, "3": 16 * 4 * 18, "5": 640}
    assert count.total == 2304 + 1152 + 640
    batch = count_macs(small_net(), torch.zeros(3, 1, 8, 8))
    assert batch.total == 3 * count.total


class _TokenStage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, pair):
        x, token = pair
        return self.fc(x) + token


class _PassesItsTokenOn(nn.Module):
    """Hands a view of a Parameter to a submodule as an input (timm's PiT does this with its
    class token), which FlopCounterMode's module tracker cannot follow under no_grad."""

    def __init__(self) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(4))
        self.stage = _TokenStage()

    def forward(self, x):
        return self.stage((x, self.token.expand(len(x), -1)))


def test_count_macs_of_a_model_that_passes_a_parameter_to_a_submodule():
    with torch.no_grad():  # callers may count inside no_grad
        count = count_macs(_PassesItsTokenOn(), torch.zeros(2, 4))
    assert count.total == count.layers["stage.fc"] == 2 * 4 * 4


def test_count_macs_sees_the_fused_attention_fast_path():
    """In eval mode under no_grad, nn.MultiheadAttention (torchvision's ViT) runs a fused kernel
    that FlopCounterMode does not see: it counted 0 MACs for a whole encoder layer."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
    with torch.no_grad():
        count = count_macs(encoder, torch.zeros(1, 5, 8))
    projections = 5 * 8 * 24 + 5 * 8 * 8  # q/k/v in, out
    feed_forward = 5 * 8 * 16 + 5 * 16 * 8
    assert count.total >= projections + feed_forward


def test_nonzero_macs_scale_each_layer_by_its_density():
    model = small_net()
    count = count_macs(model, torch.zeros(1, 1, 8, 8))
    with torch.no_grad():
        model[0].weight[:2] = 0  # half of the first conv
        model[5].weight[:, :16] = 0  # a quarter of the classifier
    assert nonzero_macs(model, count) == 4096 - 2304 / 2 - 640 / 4


def test_unstructured_pruner_records_dense_and_nonzero_macs():
    cfg = load_run_config(None, ["model.options={width: 4}"]).prune
    torch.manual_seed(0)
    model = MODELS.get("digits_cnn").build(DIGITS, width=4)
    pruner = make_pruner(cfg, model, MODELS.get("digits_cnn"), DIGITS)
    pruner.prune_to(model, 0.75)
    row = pruner.measure(model)
    c0, c1, c2 = 4, 8, 16
    layers = {
        "features.0": 64 * c0 * 9,
        "features.3": 64 * c1 * c0 * 9,
        "features.7": 16 * c2 * c1 * 9,
        "classifier": c2 * 10,
    }
    modules = dict(model.named_modules())
    expected = sum(
        macs * int(torch.count_nonzero(modules[n].weight)) / modules[n].weight.numel()
        for n, macs in layers.items()
    )
    assert row["macs_dense"] == sum(layers.values())
    assert row["macs_pruned"] == pytest.approx(expected)
    assert row["speedup"] == pytest.approx(row["macs_dense"] / expected)


def structured(model_name: str, info: DataInfo, target: float, **options):
    """(pruned model, its pruner, the dense model it came from: a separate module)."""
    cfg = load_run_config(None, ["prune.structure=structured", "prune.scope=layerwise"]).prune
    spec = MODELS.get(model_name)
    torch.manual_seed(0)
    dense = spec.build(info, **options)
    model = spec.build(info, **options)
    model.load_state_dict(dense.state_dict())
    pruner = make_pruner(cfg, model, spec, info)
    pruner.prune_to(model, target)
    return model, pruner, dense


def test_structured_pruner_records_real_macs_and_latency(monkeypatch):
    monkeypatch.setattr(measure, "LATENCY_ROUNDS", 1)
    monkeypatch.setattr(measure, "LATENCY_MIN_TIME", 0.01)
    model, pruner, dense = structured("digits_cnn", DIGITS, 0.5, width=8)
    row = pruner.measure(model)
    assert "latency_ms" not in row  # the pruner holds no dense model to time against
    row |= latency_pair(model, dense, pruner.example_inputs, 4)

    def macs(c0, c1, c2):
        return 64 * c0 * 9 + 64 * c1 * c0 * 9 + 16 * c2 * c1 * 9 + c2 * 10

    assert row["macs_dense"] == macs(8, 16, 32)
    assert row["macs_pruned"] == macs(4, 8, 16)
    assert row["speedup"] == pytest.approx(macs(8, 16, 32) / macs(4, 8, 16))
    assert row["latency_ms"] > 0 and row["dense_latency_ms"] > 0
    assert model.training and dense.training  # timing does not leave the models in eval mode
    with pytest.raises(ValueError, match="dense model"):
        latency_pair(model, model, pruner.example_inputs, 4)


def test_latency_pair_times_the_pruned_model_against_the_dense_one(monkeypatch):
    """0.9 of a ResNet-18's channels removed: about 1/100 of the MACs, measured about 6x
    faster at batch 64 here; a pair that timed one model twice would fail the margin."""
    monkeypatch.setattr(measure, "LATENCY_MIN_TIME", 0.05)
    info = DataInfo("classification", num_classes=10, in_channels=3, image_size=16)
    model, pruner, dense = structured("resnet18_cifar", info, 0.9, width=16)
    timed = []
    real = measure.compare_latency

    def spy(models, inputs, **kwargs):
        timed.append((dict(models), inputs.shape[0]))
        return real(models, inputs, **kwargs)

    monkeypatch.setattr(measure, "compare_latency", spy)
    times = latency_pair(model, dense, pruner.example_inputs, 64)
    ((models, batch),) = timed
    assert models["pruned"] is model and models["dense"] is dense and batch == 64
    assert times["latency_ms"] < 0.5 * times["dense_latency_ms"]


def test_latency_helpers():
    x = torch.zeros(1, 1, 8, 8)
    batch = repeat_batch({"x": x, "extra": (x, 3)}, 5)
    assert batch["x"].shape == (5, 1, 8, 8) and batch["extra"][0].shape == (5, 1, 8, 8)
    times = compare_latency(
        {"a": small_net(), "b": small_net()}, repeat_batch(x, 2), rounds=2, min_run_time=0.01
    )
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())


@pytest.mark.parametrize(
    ("backend", "steps"),
    [
        ("torch", ["fold-batchnorm", "channels-last"]),
        ("onnxruntime", ["onnx-export", "onnxruntime-all-opts"]),
    ],
)
def test_lean_inference_module_matches_the_model(backend, steps):
    from prunebench.export.inference import lean

    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

    torch.manual_seed(0)
    model = MODELS.get("resnet18_cifar").build(DIGITS, width=8).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics to fold
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 1, 8, 8)
    slim = lean(model, x, backend)
    assert slim.steps == steps
    with torch.inference_mode():
        torch.testing.assert_close(slim(slim.inputs), model(x), rtol=1e-4, atol=1e-5)
    assert isinstance(model.bn1, nn.BatchNorm2d)  # the original is untouched


@pytest.mark.slow
def test_latency_on_a_cpu_prints_no_cuda_warning(tmp_path):
    """torch warns "No CUDA runtime is found" when timing imports torch.utils.benchmark on a CUDA
    build with a CUDA toolkit (CUDA_HOME) but no GPU; a structured CPU step must not show it."""
    script = (
        "import torch; from torch import nn\n"
        "from prunebench.measure import latency_pair\n"
        "m = nn.Linear(4, 2)\n"
        "print(sorted(latency_pair(m, nn.Linear(4, 2), torch.zeros(1, 4), 2)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**env(), "CUDA_HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "latency_ms" in done.stdout
    assert done.stderr == ""
