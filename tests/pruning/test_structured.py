"""Structured pruning: cumulative targets of the ORIGINAL channels, scopes, presets, restore."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from prunebench.config.loading import load_run_config
from prunebench.data import DataInfo
from prunebench.errors import CheckpointError, PrunebenchError
from prunebench.models import MODELS, ModelSpec
from prunebench.pruning.factory import make_pruner
from prunebench.pruning.masks import count_to_prune
from prunebench.pruning.presets import PRESETS

DIGITS = DataInfo("classification", num_classes=10, in_channels=1, image_size=8)
CIFAR100 = DataInfo("classification", num_classes=100, in_channels=3, image_size=32)


def prune_cfg(*overrides: str):
    return load_run_config(
        None, ["prune.structure=structured", "prune.latency=false", *overrides]
    ).prune


def digits_cnn(width: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return MODELS.get("digits_cnn").build(DIGITS, width=width)


def channels(pruner) -> dict[str, int]:
    return {g.root: c for g, c in zip(pruner.groups, pruner.current_channels(), strict=True)}


def expected_keep(original: int, target: float) -> int:
    return max(1, original - count_to_prune(target, original))


def test_layerwise_steps_are_fractions_of_the_original_channels():
    model = digits_cnn()
    pruner = make_pruner(
        prune_cfg("prune.scope=layerwise"), model, MODELS.get("digits_cnn"), DIGITS
    )
    assert channels(pruner) == {"features.0": 8, "features.3": 16, "features.7": 32}
    for target in (0.3, 0.55, 0.8):  # an iterative schedule
        pruner.prune_to(model, target)
        assert channels(pruner) == {
            "features.0": expected_keep(8, target),
            "features.3": expected_keep(16, target),
            "features.7": expected_keep(32, target),
        }
    # the layers really shrank, and the classes were kept
    assert model.features[0].out_channels == 2 and model.features[7].out_channels == 6
    assert model.classifier.out_features == 10 and model.classifier.in_features == 6
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    row = pruner.measure(model)
    assert row["prunable_total"] == 56 and row["prunable_nonzero"] == 2 + 3 + 6
    assert row["achieved_sparsity"] == pytest.approx(1 - 11 / 56)
    assert row["params_total"] == sum(p.numel() for p in model.parameters())


def test_iterative_ends_where_one_shot_does():
    one = digits_cnn()
    p1 = make_pruner(prune_cfg("prune.scope=layerwise"), one, MODELS.get("digits_cnn"), DIGITS)
    p1.prune_to(one, 0.7)
    many = digits_cnn()
    p2 = make_pruner(prune_cfg("prune.scope=layerwise"), many, MODELS.get("digits_cnn"), DIGITS)
    for target in (0.1, 0.19, 0.271, 0.7):
        p2.prune_to(many, target)
    assert channels(p1) == channels(p2)
    assert sum(p.numel() for p in one.parameters()) == sum(p.numel() for p in many.parameters())


@pytest.mark.parametrize("normalizer", ["mean", "none"])
def test_global_scope_keeps_the_scope_total_and_never_empties_a_layer(normalizer):
    model = digits_cnn()
    cfg = prune_cfg("prune.scope=global", f"prune.group_normalizer={normalizer}")
    pruner = make_pruner(cfg, model, MODELS.get("digits_cnn"), DIGITS)
    for target in (0.5, 0.9, 0.96):
        pruner.prune_to(model, target)
        kept = channels(pruner)
        assert sum(kept.values()) == max(56 - count_to_prune(target, 56), 3)
        assert min(kept.values()) >= 1


def test_global_scope_prunes_the_lowest_normalized_channels():
    """Magnitude scores divided by their group's mean, one ranking: checked by hand."""
    model = digits_cnn()
    pruner = make_pruner(prune_cfg("prune.scope=global"), model, MODELS.get("digits_cnn"), DIGITS)
    f = model.features
    w = [m.weight.detach().abs() for m in (f[0], f[1], f[3], f[4], f[7], f[8], model.classifier)]
    raw = [
        torch.stack([w[0][c].sum() + w[1][c] + w[2][:, c].sum() for c in range(8)]),
        torch.stack([w[2][c].sum() + w[3][c] + w[4][:, c].sum() for c in range(16)]),
        torch.stack([w[4][c].sum() + w[5][c] + w[6][:, c].sum() for c in range(32)]),
    ]
    flat = torch.cat([s / s.mean() for s in raw])
    drop = set(flat.argsort()[:20].tolist())
    expected = [
        sum(1 for i in range(a, b) if i not in drop) for a, b in ((0, 8), (8, 24), (24, 56))
    ]
    pruner.prune_to(model, 20 / 56)
    kept = channels(pruner)
    assert [kept["features.0"], kept["features.3"], kept["features.7"]] == expected


def test_round_to_keeps_multiples():
    model = digits_cnn(16)
    pruner = make_pruner(
        prune_cfg("prune.scope=layerwise", "prune.round_to=4"),
        model,
        MODELS.get("digits_cnn"),
        DIGITS,
    )
    pruner.prune_to(model, 0.3)  # 16*0.7=11.2 -> 11 -> 12; 32 -> 22 -> 24; 64 -> 45 -> 44
    assert sorted(channels(pruner).values()) == [12, 24, 44]


def test_exclusions_are_honoured_and_recorded():
    model = digits_cnn()
    cfg = prune_cfg("prune.scope=layerwise", "prune.exclude_first_conv=true")
    pruner = make_pruner(cfg, model, MODELS.get("digits_cnn"), DIGITS)
    pruner.prune_to(model, 0.5)
    assert model.features[0].out_channels == 8
    described = json.loads(json.dumps(pruner.describe(model)))  # JSON-able, as stored
    assert described["ignored"] == {
        "classifier": "classifier outputs (classes) are never pruned",
        "features.0": "first conv (prune.exclude_first_conv=true)",
    }
    assert [g["root"] for g in described["groups"]] == ["features.7", "features.3"]


# ------------------------------------------------------------------ ResNet-18 and table 2


def resnet18_params(keep: dict[str, int], classes: int) -> int:
    """Parameters of the kuangliu ResNet-18 with the given channel counts, by hand."""
    s = [
        keep["conv1"],
        keep["layer2.0.shortcut.0"],
        keep["layer3.0.shortcut.0"],
        keep["layer4.0.shortcut.0"],
    ]
    total = 3 * 9 * s[0] + 2 * s[0]
    for stage in range(4):
        prev = s[stage - 1] if stage else s[0]
        for block in range(2):
            inner = keep[f"layer{stage + 1}.{block}.conv1"]
            c_in = prev if block == 0 else s[stage]
            total += c_in * 9 * inner + 2 * inner + inner * 9 * s[stage] + 2 * s[stage]
            if stage and block == 0:
                total += prev * s[stage] + 2 * s[stage]
    return total + s[3] * classes + classes


def test_resnet18_cifar_layout():
    model = MODELS.get("resnet18_cifar").build(CIFAR100)
    dense = {n: 64 * 2 ** max(0, int(n[5]) - 1) if n.startswith("layer") else 64 for n in [
        "conv1", "layer1.0.conv1", "layer1.1.conv1", "layer2.0.shortcut.0", "layer2.0.conv1",
        "layer2.1.conv1", "layer3.0.shortcut.0", "layer3.0.conv1", "layer3.1.conv1",
        "layer4.0.shortcut.0", "layer4.0.conv1", "layer4.1.conv1"]}  # fmt: skip
    assert sum(p.numel() for p in model.parameters()) == resnet18_params(dense, 100)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 100)


# Measured here (CIFAR-100 head) vs the paper's table 2; see docs/structured-and-export.md.
TABLE2 = {1: (0.6961, 0.7029), 2: (0.9327, 0.9380), 3: (0.8525, 0.8796), 4: (0.9763, 0.9879)}


@pytest.mark.parametrize("model_id", [1, 2, 3, 4])
def test_table2_presets_give_the_paper_layer_ratios_and_parameter_ratio(model_id):
    preset = PRESETS.get(f"resnet18_table2_model{model_id}")
    model = MODELS.get("resnet18_cifar").build(CIFAR100)
    dense = sum(p.numel() for p in model.parameters())
    cfg = prune_cfg("prune.scope=preset", f"prune.preset=resnet18_table2_model{model_id}")
    pruner = make_pruner(cfg, model, MODELS.get("resnet18_cifar"), CIFAR100)
    native = pruner.describe(model)["native_target"]
    pruner.prune_to(model, native)  # the preset's own ratios
    keep = channels(pruner)
    for group in pruner.groups:
        prefix = group.root.split(".")[0]
        assert keep[group.root] == group.original - count_to_prune(
            preset.ratios[prefix], group.original
        )
    pruned = sum(p.numel() for p in model.parameters())
    assert pruned == resnet18_params(keep, 100)
    paper, measured = TABLE2[model_id]
    assert 1 - pruned / dense == pytest.approx(measured, abs=5e-5)
    assert abs((1 - pruned / dense) - paper) < 0.03


def test_preset_scales_with_the_target_and_refuses_ratios_above_one():
    model = MODELS.get("resnet18_cifar").build(DIGITS, width=8)
    cfg = prune_cfg("prune.scope=preset", "prune.layer_ratios={layer3: 0.6, layer4: 0.9}")
    pruner = make_pruner(cfg, model, MODELS.get("resnet18_cifar"), DIGITS)
    info = pruner.describe(model)
    # channels: layer3 groups 32*3, layer4 groups 64*3, the rest (8*3 + 16*3) unpruned
    assert info["native_target"] == pytest.approx((0.6 * 96 + 0.9 * 192) / 360)
    pruner.prune_to(model, info["native_target"] / 2)  # half the preset everywhere
    keep = channels(pruner)
    assert keep["layer3.0.conv1"] == 32 - count_to_prune(0.3, 32)
    assert keep["layer4.1.conv1"] == 64 - count_to_prune(0.45, 64)
    assert keep["conv1"] == 8 and keep["layer2.0.shortcut.0"] == 16
    with pytest.raises(PrunebenchError, match=r"> 1 in .layer4.*targets go up to 0\.7111"):
        pruner.prune_to(model, 0.9)


def test_unknown_preset_prefix_is_a_config_error():
    model = digits_cnn()
    with pytest.raises(PrunebenchError, match="no module named 'layer9'"):
        make_pruner(
            prune_cfg("prune.scope=preset", "prune.layer_ratios={layer9: 0.5}"),
            model,
            MODELS.get("digits_cnn"),
            DIGITS,
        )


# ------------------------------------------------------------------ state and restore


def test_state_is_json_and_rebuilds_the_structure_on_a_fresh_dense_model():
    model = MODELS.get("resnet18_cifar").build(DIGITS, width=8)
    spec = MODELS.get("resnet18_cifar")
    cfg = prune_cfg("prune.scope=layerwise")
    pruner = make_pruner(cfg, model, spec, DIGITS)
    pruner.prune_to(model, 0.4)
    pruner.prune_to(model, 0.6)
    tensors, meta = pruner.state()
    meta = json.loads(json.dumps(meta))
    assert tensors == {} and meta["data_info"]["image_size"] == 8

    fresh = MODELS.get("resnet18_cifar").build(DIGITS, width=8)
    restored = make_pruner(cfg, fresh, spec, DIGITS)
    restored.restore(fresh, {}, meta)
    fresh.load_state_dict(model.state_dict())
    model.eval(), fresh.eval()
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model(x), fresh(x))
    # the restored pruner goes on from the original sizes
    restored.prune_to(fresh, 0.8)
    assert channels(restored)["layer4.1.conv1"] == 64 - count_to_prune(0.8, 64)

    bad = {**meta, "history": [["layer7.conv", True, [0]]]}
    with pytest.raises(CheckpointError, match=r"layer7\.conv"):
        other = MODELS.get("resnet18_cifar").build(DIGITS, width=8)
        make_pruner(cfg, other, spec, DIGITS).restore(other, {}, bad)


def test_a_model_the_graph_cannot_trace_names_the_model_and_layer():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.head = nn.Linear(5, 10)  # does not fit the conv's 4*6*6 outputs

        def forward(self, x):
            return self.head(self.conv(x).flatten(1))

    MODELS.register("_broken_for_test", ModelSpec(build=lambda info: Broken(), classifier="head"))
    try:
        with pytest.raises(PrunebenchError, match=r"model '_broken_for_test'.*layer 'head'"):
            make_pruner(prune_cfg(), Broken(), MODELS.get("_broken_for_test"), DIGITS)
    finally:
        MODELS._items.pop("_broken_for_test", None)
