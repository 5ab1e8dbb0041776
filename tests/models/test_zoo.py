"""The model zoo, generated from lists (as timm tests its registry): the smallest member of every
torchvision classification family and 20 timm families, each pruned structured (50 % of the
channels, global, magnitude) and unstructured (80 %, global). Checked: forward and backward run,
the output shape is unchanged, parameters and MACs equal an independent count
(torch.utils.flop_counter on the model itself), sparsity counted from the weights. Models that
are refused are listed with the one line they are refused with.

A fast subset runs by default; `make test-zoo` (pytest -m zoo) runs them all.
"""

from __future__ import annotations

import copy
import gc

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from prunebench.config.schema import ModelConfig, PruneConfig
from prunebench.data.info import DataInfo
from prunebench.errors import PrunebenchError
from prunebench.models.build import build_model, model_spec
from prunebench.pruning.factory import make_pruner
from prunebench.pruning.masks import count_to_prune
from prunebench.tasks import make_task

CLASSES = 10
# family -> (smallest member, image size it needs: AlexNet and Inception pool too far for 32,
# MaxViT's 7x7 partitions need 224)
TORCHVISION = {
    "alexnet": ("alexnet", 64),
    "convnext": ("convnext_tiny", 32),
    "densenet": ("densenet121", 32),
    "efficientnet": ("efficientnet_b0", 32),
    "efficientnet_v2": ("efficientnet_v2_s", 32),
    "googlenet": ("googlenet", 32),
    "inception": ("inception_v3", 80),
    "maxvit": ("maxvit_t", 224),
    "mnasnet": ("mnasnet0_5", 32),
    "mobilenet_v2": ("mobilenet_v2", 32),
    "mobilenet_v3": ("mobilenet_v3_small", 32),
    "regnet": ("regnet_y_400mf", 32),
    "resnet": ("resnet18", 32),
    "resnext": ("resnext50_32x4d", 32),
    "shufflenet": ("shufflenet_v2_x0_5", 32),
    "squeezenet": ("squeezenet1_1", 32),
    "swin": ("swin_t", 32),
    "vgg": ("vgg11", 32),
    "vit": ("vit_b_16", 32),
    "wide_resnet": ("wide_resnet50_2", 32),
}
TIMM = ["resnet10t", "resnext26ts", "efficientnet_b0", "mobilenetv3_small_050",
        "mobilenetv4_conv_small_035", "regnetx_002", "convnext_atto", "vit_tiny_patch16_224",
        "deit_tiny_patch16_224", "lcnet_050", "dla46_c", "mnasnet_small", "tinynet_e",
        "repvgg_a0", "densenet121", "levit_128s", "coat_lite_tiny", "cait_xxs24_224",
        "pit_ti_224", "ghostnet_050"]  # fmt: skip
# Refused by structured pruning, with (a fragment of) the one line that says why.
REFUSED = {
    "torchvision:shufflenet_v2_x0_5": "cannot build its dependency graph (ZeroDivisionError: "
    "integer division or modulo by zero) in InvertedResidual 'stage4.1', at a reshape of the "
    "channels",
    "torchvision:swin_t": "cannot build its dependency graph (its memory grew by more than",
    "timm:cspresnet50": "cannot score the channels of 'stages.0.blocks.0.conv3.conv' (IndexError",
}
FAST = {"torchvision:squeezenet1_1", "torchvision:mobilenet_v3_small", "torchvision:regnet_y_400mf",
        "torchvision:shufflenet_v2_x0_5", "timm:vit_tiny_patch16_224", "timm:lcnet_050"}  # fmt: skip

CASES = [(f"torchvision:{name}", size) for name, size in TORCHVISION.values()]
CASES += [(f"timm:{name}", 32) for name in TIMM]
CASES += [(name, 32) for name in REFUSED if name.startswith("timm:")]
PARAMS = [
    pytest.param(name, size, id=name, marks=() if name in FAST else pytest.mark.zoo)
    for name, size in CASES
]


def macs(model: torch.nn.Module, inputs: torch.Tensor) -> float:
    """MACs of one forward, counted here by torch's FlopCounterMode (FLOPs / 2) on a deep copy
    that runs nn.MultiheadAttention's unfused path (the counter cannot see inside the fused
    one) with autograd on (PiT hands a view of a Parameter to a submodule, which the counter's
    module tracker cannot follow under no_grad)."""
    copied = copy.deepcopy(model).eval()
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with FlopCounterMode(display=False) as counter:
            copied(inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return counter.get_total_flops() / 2


def trains(model: torch.nn.Module, size: int) -> None:
    model.train()
    x, y = torch.randn(2, 3, size, size), torch.randint(0, CLASSES, (2,))
    out = make_task("classification").forward(model, x)
    assert out.shape == (2, CLASSES)
    torch.nn.functional.cross_entropy(out, y).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(("name", "size"), PARAMS)
def test_zoo_model(name, size):
    info = DataInfo("classification", num_classes=CLASSES, in_channels=3, image_size=size)
    cfg = ModelConfig(name=name)
    torch.manual_seed(0)
    dense = build_model(cfg, info)
    example = torch.zeros(1, 3, size, size)
    dense_macs = macs(dense, example)

    # structured, 50 % of the channels, one global ranking
    model = copy.deepcopy(dense)
    structured = PruneConfig(structure="structured", latency=False)
    if name in REFUSED:
        with pytest.raises(PrunebenchError) as refused:
            pruner = make_pruner(structured, model, model_spec(cfg), info)
            pruner.prune_to(model, 0.5)
        assert REFUSED[name] in str(refused.value)
        assert "\n" not in str(refused.value)
    else:
        pruner = make_pruner(structured, model, model_spec(cfg), info)
        model = pruner.prune_to(model, 0.5)
        row = pruner.measure(model)
        assert row["params_total"] == sum(p.numel() for p in model.parameters())
        assert row["params_total"] < sum(p.numel() for p in dense.parameters())
        assert row["macs_dense"] == pytest.approx(dense_macs)
        assert row["macs_pruned"] == pytest.approx(macs(model, example))
        rounded = pruner.round_to is not None
        assert row["achieved_sparsity"] == pytest.approx(0.5, abs=0.05 if rounded else 0.01)
        trains(model, size)

    # unstructured, 80 % of the prunable weights, one global ranking (the structured copy is
    # freed first: VGG-11 alone holds 129M parameters)
    del model
    pruner = None
    gc.collect()
    model = copy.deepcopy(dense)
    pruner = make_pruner(PruneConfig(), model, model_spec(cfg), info)
    pruner.prune_to(model, 0.8)
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in pruner.prunable.names)
    zeros = sum(int((params[n] == 0).sum()) for n in pruner.prunable.names)
    assert zeros == count_to_prune(0.8, total)
    row = pruner.measure(model)
    assert row["achieved_sparsity"] == pytest.approx(zeros / total, abs=1e-12)
    assert row["macs_dense"] == pytest.approx(dense_macs)
    assert row["macs_pruned"] < row["macs_dense"]
    trains(model, size)
