"""Every registered model, generated from the registry: 50 % unstructured and 50 % structured
pruning, then forward + backward with the right output shape.

Structured pruning uses Torch-Pruning's MetaPruner with each model's StructuredHooks (the
settings the StructuredPruner applies); sizes are cut down through model options where the
builder has them, so the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from torch import nn

from prunebench.config import PruneConfig
from prunebench.data import DataInfo
from prunebench.models import MODELS
from prunebench.pruning import make_pruner
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


@pytest.mark.parametrize("name", MODELS.names())
def test_structured_half(name):
    model = build(name)
    spec = MODELS.get(name)
    classifier = dict(model.named_modules())[spec.classifier] if spec.classifier else None
    dense_params = sum(p.numel() for p in model.parameters())
    hooks = spec.structured
    kwargs = hooks.pruner_kwargs(model, 0.5) if hooks and hooks.pruner_kwargs else {}
    ignored = [classifier, *kwargs.pop("ignored_layers", [])]
    model.eval()
    pruner = tp.pruner.MetaPruner(
        model,
        example_inputs(name),
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[m for m in ignored if m is not None],
        **kwargs,
    )
    pruner.step()
    if hooks and hooks.after_step:
        hooks.after_step(model, pruner)

    pruned_params = sum(p.numel() for p in model.parameters())
    assert pruned_params < 0.75 * dense_params
    forward_backward(name, model)
    if classifier is not None:
        out = classifier.out_features
        assert out == (info_for(name).vocab_size or info_for(name).num_classes)
