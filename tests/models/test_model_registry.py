"""Every registered model, generated from the registry: 50 % unstructured and 50 % structured
pruning, then forward + backward with the right output shape.

Structured pruning uses Torch-Pruning's MetaPruner with each model's StructuredHooks (the
settings the StructuredPruner applies); sizes are cut down through model options where the
builder has them, so the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunebench.config.schema import PruneConfig
from prunebench.data import DataInfo
from prunebench.models import MODELS
from prunebench.pruning.factory import make_pruner
from prunebench.pruning.masks import count_to_prune
from prunebench.tasks import make_task

IMAGES = DataInfo(task="classification", num_classes=10, in_channels=3, image_size=32)
TOKENS = DataInfo(task="causal_lm", vocab_size=64, seq_len=16)
# Smaller variants where the builder offers options; unlisted models are built as they are.
OPTIONS: dict[str, dict] = {
    "digits_cnn": {"width": 8},
    "efficientnet_v2_s": {"stages": 4},  # fused MBConv and MBConv+SE blocks, 1/5 of the weights
    "vit_small_patch16_224": {"patch_size": 8, "depth": 2},  # ViT-S width and 6 heads
}


def info_for(name: str) -> DataInfo:
    return TOKENS if MODELS.get(name).task == "causal_lm" else IMAGES


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return MODELS.get(name).build(info_for(name), **OPTIONS.get(name, {}))


def batch_for(name: str, n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    info = info_for(name)
    if info.task == "causal_lm":
        ids = torch.randint(0, info.vocab_size, (n, info.seq_len + 1))
        return ids[:, :-1], ids[:, 1:]
    images = torch.randn(n, info.in_channels, info.image_size, info.image_size)
    return images, torch.randint(0, info.num_classes, (n,))


def expected_shape(name: str, n: int = 2) -> tuple[int, ...]:
    info = info_for(name)
    if info.task == "causal_lm":
        return (n, info.seq_len, info.vocab_size)
    return (n, info.num_classes)


def example_inputs(name: str):
    spec, info = MODELS.get(name), info_for(name)
    if spec.example_inputs is not None:
        return spec.example_inputs(info)
    return torch.randn(1, info.in_channels, info.image_size, info.image_size)


def forward_backward(name: str, model: nn.Module) -> torch.Tensor:
    """Loss backward through the task; returns the output of a forward pass."""
    task = make_task(info_for(name).task)
    model.train()
    inputs, targets = batch_for(name)
    logits = task.forward(model, inputs)
    assert tuple(logits.shape) == expected_shape(name)
    task.loss(model, (inputs, targets)).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    return logits


@pytest.mark.parametrize("name", MODELS.names())
def test_unstructured_half(name):
    model = build(name)
    spec = MODELS.get(name)
    pruner = make_pruner(PruneConfig(), model, spec)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    pruner.prune_to(model, 0.5)

    measured = pruner.measure(model)
    total = measured["prunable_total"]
    assert total == sum(before[n].numel() for n in pruner.prunable.names)
    assert measured["prunable_total"] - measured["prunable_nonzero"] == count_to_prune(0.5, total)
    # global magnitude: no pruned weight is larger than a kept one
    keep = pruner.masks.keep
    largest_pruned = max(before[n][~keep[n]].abs().max() for n in keep if not keep[n].all())
    smallest_kept = min(before[n][keep[n]].abs().min() for n in keep if keep[n].any())
    assert largest_pruned <= smallest_kept
    # everything outside the prunable set is untouched (and reported with a reason)
    params = dict(model.named_parameters())
    for n in params:
        if n not in pruner.prunable.names:
            assert torch.equal(params[n], before[n]), n
    described = pruner.describe(model)
    assert set(described["prunable"]) | set(described["excluded"]) >= set(params)

    forward_backward(name, model)
    pruner.masks.mask_grads()
    for n in pruner.prunable.names:
        assert not params[n].grad[~pruner.masks.keep[n]].any()


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("name", MODELS.names())
def test_structured_half(name, scope):
    """prunebench's StructuredPruner (Torch-Pruning + the model's hooks) to 50 % of the original
    channels, then the pruned model still trains."""
    model = build(name)
    spec = MODELS.get(name)
    classifier = dict(model.named_modules())[spec.classifier] if spec.classifier else None
    classes = classifier.out_features if classifier is not None else None
    dense_params = sum(p.numel() for p in model.parameters())
    cfg = PruneConfig(structure="structured", scope=scope, latency=False)
    pruner = make_pruner(cfg, model, spec, info_for(name))
    heads0 = dict(pruner.heads0)
    model = pruner.prune_to(model, 0.5)

    measured = pruner.measure(model)
    rounded = spec.structured is not None and (spec.structured.pruner_kwargs(model) or {}).get(
        "round_to"
    )
    tolerance = 0.15 if rounded else 0.02  # round_to moves each group to a multiple of 8
    assert measured["achieved_sparsity"] == pytest.approx(0.5, abs=tolerance)
    assert sum(p.numel() for p in model.parameters()) < 0.75 * dense_params
    assert measured["speedup"] > 1.5
    forward_backward(name, model)
    if classifier is not None:
        assert classifier.out_features == classes  # classes / vocabulary are never pruned
    for layer, original in heads0.items():  # whole heads: half of the ORIGINAL count kept
        assert pruner.graph.num_heads[dict(model.named_modules())[layer]] == round(original / 2)


def test_a_long_list_of_names_is_cut_short_in_the_message():
    from prunebench.registry import SHOWN, suggest

    names = [f"model_{i:03d}" for i in range(80)]
    assert suggest("modle_042", names).startswith("did you mean 'model_0")
    message = suggest("zzz", names)
    assert message.startswith("known: model_000, model_001") and message.endswith("(80 in all)")
    assert message.count(",") == SHOWN  # SHOWN names, then the count
    assert suggest("zzz", ["a", "b"]) == "known: a, b"
