"""Channel groups of a structured pruner: found in Torch-Pruning's dependency graph, scored, and
cut. A group is a layer's output channels with every slice coupled to them; its score per unit
is the sum over everything removing that unit removes (in every channel group of a grouped
layer). Choosing HOW MANY a group keeps is `pruning.targets`; this module chooses WHICH.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prunebench.errors import ConfigError, PrunebenchError
from prunebench.measure import is_conv1d
from prunebench.pruning.params import check_prefixes
from prunebench.pruning.presets import match_ratio
from prunebench.pruning.targets import mean_ratio
from prunebench.pruning.tp_adapter import ChannelGraph, group_width, slices

NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
SCORED = (nn.modules.conv._ConvNd, nn.Linear, *NORMS)


@dataclass
class ChannelGroup:
    """Channels that go together (a layer's outputs and every slice coupled to them)."""

    root: str  # the root layer's name (its output channels)
    module: nn.Module
    original: int  # channels (per channel group of grouped layers) of the dense model
    ratio: float = 1.0  # preset ratio (relative weight of the target), 1.0 otherwise
    prefix: str | None = None


def module_names(model: nn.Module) -> dict[nn.Module, str]:
    return {m: n for n, m in model.named_modules()}


def discover(
    graph: ChannelGraph,
    model: nn.Module,
    ratios: dict[str, float] | None,
    model_name: str,
    ignored: dict[str, str],
) -> list[ChannelGroup]:
    """Every root group of the graph with its original width and (preset scope) its ratio."""
    if ratios is not None:
        check_prefixes(model, ratios, "prune.layer_ratios")
    groups = []
    for module, group in graph.root_groups():
        name = graph.module_name(module)
        units = group_width(group) // graph.channel_groups(group)
        prefix, ratio = match_ratio(ratios, name) if ratios is not None else (None, 1.0)
        groups.append(ChannelGroup(name, module, units, ratio, prefix))
    if not groups:
        raise ConfigError(
            f"model '{model_name}' has no prunable channel groups "
            f"(ignored: {', '.join(ignored) or 'none'})"
        )
    return groups


def preset_mean(groups: list[ChannelGroup], model_name: str) -> float:
    """The channel-weighted mean preset ratio (the preset's native target); refused when 0."""
    mean = mean_ratio([g.ratio for g in groups], [g.original for g in groups])
    if mean <= 0:
        raise ConfigError(
            f"the preset prunes no channel group of model '{model_name}' "
            f"(group roots: {', '.join(g.root for g in groups[:5])}, ...)"
        )
    return mean


def cut_layers(
    graph: ChannelGraph, groups: list[ChannelGroup], head_layers: list[nn.Module], model: nn.Module
) -> set[str]:
    """Names of the layers some channel group or head layout cuts: the only weights whose
    scores are read (a language model's output layer is not one: no gradient is kept)."""
    names = module_names(model)
    roots = [g.module for g in groups] + list(graph.num_heads)  # + Torch-Pruning's heads
    layers = {p.layer for m in roots for p in slices(graph.full_group(m))}
    layers.update(head_layers)
    return {names[m] for m in layers if m in names}


def scored_params(model: nn.Module, layers: set[str]) -> dict[str, nn.Parameter]:
    """Weights of the given layers that a criterion scores (conv, linear, norms)."""
    out = {}
    for name, module in model.named_modules():
        if name not in layers:
            continue
        weight = getattr(module, "weight", None)
        scored = isinstance(module, SCORED) or is_conv1d(module)
        if scored and isinstance(weight, nn.Parameter):
            out[f"{name}.weight" if name else "weight"] = weight
    return out


def unit_scores(graph: ChannelGraph, full, importance) -> torch.Tensor:
    """One score per unit of the group: the sum over its channel in EACH channel group."""
    imp = importance(full)
    if imp is None:  # a group without scored weights: keep its order, lowest index first
        imp = torch.arange(group_width(full), dtype=torch.float32)
    return imp.detach().float().cpu().view(graph.channel_groups(full), -1).sum(0)


def group_scores(
    graph: ChannelGraph, group: ChannelGroup, full, importance, model_name: str
) -> torch.Tensor:
    """`unit_scores`, with Torch-Pruning's failure to follow a layer as one line."""
    try:
        return unit_scores(graph, full, importance)
    except Exception as exc:  # Torch-Pruning mapped indices past a layer it cannot follow
        raise PrunebenchError(
            f"model '{model_name}': cannot score the channels of '{group.root}' "
            f"({type(exc).__name__}: {exc}): Torch-Pruning maps them through a layer it "
            f"cannot follow; keep them with prune.exclude=[{group.root}] or use "
            "prune.structure=unstructured"
        ) from None


def cut(
    graph: ChannelGraph,
    group: ChannelGroup,
    full,
    score: torch.Tensor,
    n_prune: int,
    model_name: str,
) -> None:
    """Remove the `n_prune` lowest-scored units (ties: lowest index) in every channel group."""
    values = score.tolist()
    order = sorted(range(len(values)), key=lambda j: (values[j], j))
    chosen = sorted(order[:n_prune])
    size = len(score)
    idxs = [i + k * size for k in range(graph.channel_groups(full)) for i in chosen]
    try:
        if not graph.prune(group.module, idxs):
            raise PrunebenchError(
                "it would remove every channel of a coupled layer; keep its channels with "
                f"prune.exclude=[{group.root}]"
            )
    except PrunebenchError as exc:
        raise PrunebenchError(
            f"model '{model_name}': cannot prune layer '{group.root}': {exc}"
        ) from None
    except Exception as exc:
        raise PrunebenchError(
            f"model '{model_name}': Torch-Pruning failed on layer '{group.root}': "
            f"{type(exc).__name__}: {exc}"
        ) from None
