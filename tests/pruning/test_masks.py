"""Unstructured masks: exact counts against brute force, masks that only grow, zeros that stay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunebench.config.schedules import geometric
from prunebench.config.schema import PruneConfig
from prunebench.criteria import make_criterion
from prunebench.data import DataInfo
from prunebench.errors import ConfigError
from prunebench.models.small import build_small_cnn
from prunebench.pruning.masks import count_to_prune, global_masks, layerwise_masks, lowest_k_mask
from prunebench.pruning.params import select_prunable
from prunebench.pruning.unstructured import UnstructuredPruner


def small_model(width: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return build_small_cnn(DataInfo("classification", 10, 1, 8), width=width)


def test_lowest_k_mask_matches_sorting_brute_force():
    torch.manual_seed(1)
    scores = torch.randn(1000)
    for k in (0, 1, 17, 500, 999, 1000):
        keep = lowest_k_mask(scores, k)
        expected = torch.ones(1000, dtype=torch.bool)
        expected[torch.argsort(scores)[:k]] = False
        assert torch.equal(keep, expected)


def test_lowest_k_mask_ties_are_exact_and_deterministic():
    scores = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 0.0])
    keep = lowest_k_mask(scores, 2)
    assert int((~keep).sum()) == 2
    # ties are broken by index: the first two zeros go
    assert keep.tolist() == [True, False, False, True, True, True]


def test_global_masks_prune_the_globally_smallest():
    scores = {"a": torch.tensor([[5.0, 1.0], [3.0, 7.0]]), "b": torch.tensor([2.0, 6.0, 4.0, 0.5])}
    current = {k: torch.ones_like(v, dtype=torch.bool) for k, v in scores.items()}
    keep = global_masks(scores, current, 0.5)  # 4 of 8: 0.5, 1, 2, 3
    assert keep["a"].tolist() == [[True, False], [False, True]]
    assert keep["b"].tolist() == [False, True, True, False]


def test_layerwise_masks_prune_each_tensor_alike():
    scores = {"a": torch.arange(10.0), "b": torch.arange(4.0).flip(0)}
    current = {k: torch.ones_like(v, dtype=torch.bool) for k, v in scores.items()}
    keep = layerwise_masks(scores, current, 0.5)
    assert keep["a"].tolist() == [False] * 5 + [True] * 5
    assert keep["b"].tolist() == [True, True, False, False]


def test_masks_only_grow_even_if_pruned_weights_would_score_high():
    scores = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    current = {"a": torch.tensor([True, True, True, False])}  # the 4.0 one is already pruned
    keep = global_masks(scores, current, 0.5)
    assert keep["a"].tolist() == [False, True, True, False]


def test_count_to_prune_rounds_half_up():
    assert count_to_prune(0.5, 3) == 2
    assert count_to_prune(0.25, 10) == 3
    assert count_to_prune(0.9, 10) == 9
    assert count_to_prune(1.0, 7) == 7


def test_prunable_set_defaults_and_exclusions():
    model = small_model()
    default = select_prunable(model, PruneConfig(), classifier="classifier")
    weights = [n for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    assert default.names == weights  # conv and linear weights, in model order
    assert default.excluded["features.1.weight"] == "BatchNorm2d parameters are not pruned"
    assert default.excluded["classifier.bias"].startswith("bias")

    cfg = PruneConfig(exclude_first_conv=True, exclude_classifier=True, include_biases=True)
    chosen = select_prunable(model, cfg, classifier="classifier")
    assert "features.0.weight" not in chosen.names
    assert "classifier.weight" not in chosen.names
    assert chosen.excluded["features.0.weight"].startswith("first conv")
    assert chosen.excluded["classifier.weight"].startswith("classifier")
    assert "classifier.bias" not in chosen.names  # the classifier's bias goes with it
    assert select_prunable(model, PruneConfig(include_biases=True)).names[-1] == "classifier.bias"


def test_exclude_names_must_exist():
    with pytest.raises(ConfigError, match="no module named 'featurez'"):
        select_prunable(small_model(), PruneConfig(exclude=["featurez"]))


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_achieved_sparsity_is_counted_and_within_one_weight(scope):
    model = small_model()
    prunable = select_prunable(model, PruneConfig())
    pruner = UnstructuredPruner(model, prunable, make_criterion("magnitude"), scope=scope)
    sizes = {n: p.numel() for n, p in model.named_parameters() if n in prunable.names}
    total = sum(sizes.values())
    for target in geometric(0.95, steps=4):
        pruner.prune_to(model, target)
        measured = pruner.measure(model)
        params = dict(model.named_parameters())
        zeros = sum(int((params[n] == 0).sum()) for n in prunable.names)
        assert measured["prunable_total"] == total
        assert measured["prunable_nonzero"] == total - zeros
        if scope == "global":
            assert abs(zeros - target * total) <= 0.5 + 1e-9
        else:
            for name, size in sizes.items():
                assert abs(int((params[name] == 0).sum()) - target * size) <= 0.5 + 1e-9


def test_global_magnitude_prunes_the_smallest_weights_brute_force():
    model = small_model()
    prunable = select_prunable(model, PruneConfig())
    params = dict(model.named_parameters())
    flat = torch.cat([params[n].detach().abs().flatten() for n in prunable.names])
    k = count_to_prune(0.7, flat.numel())
    threshold = flat.sort().values[k - 1]
    expected = {n: params[n].detach().abs() > threshold for n in prunable.names}
    pruner = UnstructuredPruner(model, prunable, make_criterion("magnitude"))
    pruner.prune_to(model, 0.7)
    for name in prunable.names:
        assert torch.equal(params[name].detach() != 0, expected[name])


def test_mask_grads_zeroes_exactly_the_pruned_gradients():
    model = small_model()
    pruner = UnstructuredPruner(
        model, select_prunable(model, PruneConfig()), make_criterion("magnitude")
    )
    pruner.prune_to(model, 0.7)
    torch.nn.functional.cross_entropy(
        model(torch.randn(8, 1, 8, 8)), torch.randint(0, 10, (8,))
    ).backward()
    params = dict(model.named_parameters())
    grads = {n: params[n].grad.clone() for n in pruner.masks.names}
    pruner.masks.mask_grads()
    for name, keep in pruner.masks.keep.items():
        assert bool((params[name].grad[~keep] == 0).all())
        assert torch.equal(params[name].grad[keep], grads[name][keep])


def test_training_keeps_no_optimizer_state_for_pruned_weights():
    """Why masks also zero gradients (not only weights after the step): momentum buffers and
    any gradient-norm clipping see only the kept weights."""
    from prunebench.engine.training import train_epoch
    from prunebench.tasks import Classification

    model = small_model()
    pruner = UnstructuredPruner(
        model, select_prunable(model, PruneConfig()), make_criterion("magnitude")
    )
    pruner.prune_to(model, 0.8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = [(torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))) for _ in range(3)]
    train_epoch(model, batches, Classification(), optimizer, torch.device("cpu"), pruner.masks)
    params = dict(model.named_parameters())
    for name, keep in pruner.masks.keep.items():
        buffer = optimizer.state[params[name]]["momentum_buffer"]
        assert bool((buffer[~keep] == 0).all()) and bool((buffer[keep] != 0).any())


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    ],
)
def test_pruned_weights_stay_exactly_zero_through_training(make_opt):
    from prunebench.engine.training import train_epoch
    from prunebench.tasks import Classification

    model = small_model()
    prunable = select_prunable(model, PruneConfig())
    pruner = UnstructuredPruner(model, prunable, make_criterion("magnitude"))
    pruner.prune_to(model, 0.8)
    before = {n: m.clone() for n, m in pruner.masks.keep.items()}
    torch.manual_seed(0)
    batches = [(torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))) for _ in range(5)]
    optimizer = make_opt(model.parameters())
    for _ in range(3):
        train_epoch(model, batches, Classification(), optimizer, torch.device("cpu"), pruner.masks)
    params = dict(model.named_parameters())
    for name, keep in before.items():
        assert bool((params[name][~keep] == 0).all())
        assert bool((params[name][keep] != 0).all())  # the kept ones did train (none hit 0.0)
    assert pruner.measure(model)["prunable_nonzero"] == sum(int(k.sum()) for k in before.values())
