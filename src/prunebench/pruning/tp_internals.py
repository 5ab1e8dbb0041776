"""Whether the installed Torch-Pruning still has the internals `tp_adapter` was written for
(torch-pruning==1.6.1, pinned): every member it uses, with the parameters it passes, and their
behaviour on small probe models (groups, channel groups of grouped and fused layers, pruning,
history, heads). Kept apart from the adapter: it is a test of Torch-Pruning, run by
tests/pruning/test_tp_adapter.py, not part of pruning.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import torch
import torch_pruning as tp
from torch import nn

from prunebench.pruning.rollback import restore, snapshot
from prunebench.pruning.tp_adapter import ChannelGraph, slices

WRITTEN_FOR = "1.6.1"
_fn = tp.pruner.function

# (object, member, parameters its signature must start with; None: an attribute).
REQUIRED: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("MetaPruner", "__init__", ("self", "model", "example_inputs", "importance")),
    ("MetaPruner", "step", ("self", "interactive")),
    ("MetaPruner", "_get_channel_groups", ("self", "group")),
    ("MetaPruner", "_is_atten_group", ("self", "group")),
    ("DependencyGraph", "get_all_groups", ("self", "ignored_layers", "root_module_types")),
    ("DependencyGraph", "get_pruning_group", ("self", "module", "pruning_fn", "idxs")),
    ("DependencyGraph", "check_pruning_group", ("self", "group")),
    ("DependencyGraph", "get_pruner_of_module", ("self", "module")),
    ("DependencyGraph", "get_out_channels", ("self", "module_or_node")),
    ("DependencyGraph", "pruning_history", ("self",)),
    ("DependencyGraph", "load_pruning_history", ("self", "pruning_history")),
    ("BasePruningFunc", "_prune_parameter_and_grad", ("self", "weight", "keep_idxs", "pruning_dim")),
    ("meta", "num_heads", None),
    ("meta", "out_channel_groups", None),
    ("meta", "in_channel_groups", None),
    ("meta", "prune_num_heads", None),
    ("meta", "prune_head_dims", None),
    ("meta", "head_pruning_ratio_dict", None),
    ("meta", "pruning_ratio_dict", None),
    ("meta", "per_step_pruning_ratio", None),
    ("meta", "current_step", None),
    ("meta", "_scope_initial_channels", None),
    ("meta", "ignored_layers", None),
    ("meta", "root_module_types", None),
    ("meta", "importance", None),
    ("graph", "_module2name", None),
    ("graph", "_pruning_history", None),  # put back when a step is refused (GraphState)
    ("graph", "module2node", None),
    ("Node", "module", None),  # read from a failed build's traceback (pruning/guard.py)
    ("Node", "inputs", None),
    ("Node", "name", None),
    ("Node", "grad_fn", None),  # replaced by a TracedOp once the graph is built
]  # fmt: skip
CLASSES = {
    "MetaPruner": tp.pruner.MetaPruner,
    "DependencyGraph": tp.DependencyGraph,
    "BasePruningFunc": _fn.BasePruningFunc,
}


def check_internals() -> list[str]:
    """What differs, in the installed Torch-Pruning, from the internals this module was written
    for: the version, every member in REQUIRED (present, same leading parameters), and their
    behaviour on a small grouped model. Empty when all is as expected."""
    problems = []
    installed = version("torch-pruning")  # tp.__version__ says 1.6.0 in the 1.6.1 wheel
    if installed != WRITTEN_FOR:
        problems.append(f"torch-pruning is {installed}, this adapter was written for {WRITTEN_FOR}")
    for owner, member, params in REQUIRED:
        if owner not in CLASSES:
            continue
        attribute = getattr(CLASSES[owner], member, None)
        if attribute is None:
            problems.append(f"{owner}.{member} is missing")
            continue
        found = tuple(inspect.signature(attribute).parameters)[: len(params or ())]
        if params is not None and found != params:
            problems.append(f"{owner}.{member} takes {found}, expected {params}")
    return problems or _behaviour_problems()


class _Probe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 1)
        self.grouped = nn.Conv2d(8, 8, 1, groups=2)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.grouped(self.conv(x)).mean((2, 3)))


def _behaviour_problems() -> list[str]:
    """The members REQUIRED behave as used: groups, channel groups, pruning, history, heads."""
    problems = []
    model, example = _Probe(), torch.zeros(1, 2, 3, 3)
    graph = ChannelGraph(model, example, {}, [model.head])
    for owner, member, params in REQUIRED:
        node = next(iter(graph.dg.module2node.values()))
        holder = {"meta": graph.meta, "graph": graph.dg, "Node": node}.get(owner)
        if params is None and holder is not None and not hasattr(holder, member):
            problems.append(f"{type(holder).__name__}.{member} is missing after construction")
    if problems:
        return problems
    roots = {graph.module_name(m): group for m, group in graph.root_groups()}
    if set(roots) != {"conv", "grouped"}:
        problems.append(f"get_all_groups found roots {sorted(roots)}, expected conv, grouped")
        return problems
    if graph.channel_groups(roots["conv"]) != 2:
        problems.append("_get_channel_groups does not see the grouped conv's 2 groups")
    if graph.dg.module2node[model.conv].module is not model.conv:
        problems.append("DependencyGraph.module2node no longer maps a layer to its Node")
    layers = {graph.module_name(s.layer): s.kind for s in slices(roots["conv"])}
    if layers.get("conv") != "out" or layers.get("grouped") not in ("in", "out"):
        problems.append(f"group slices are {layers}, expected conv out + grouped in/out")
    if not graph.prune(model.conv, [0, 4]) or model.conv.out_channels != 6:
        problems.append("pruning 2 channels of 'conv' did not leave 6")
    if graph.history() != [["conv", True, [0, 4]]]:
        problems.append(f"pruning_history is {graph.history()}, expected [['conv', True, [0, 4]]]")
    saved, modules = graph.save_state(), snapshot(model)
    graph.prune(model.grouped, [0, 4])
    graph.restore_state(saved)
    restore(modules)
    modules.close()
    if graph.history() != [["conv", True, [0, 4]]] or model.grouped.out_channels != 8:
        problems.append("restoring _pruning_history did not put the graph's history back")
    fresh = _Probe()
    ChannelGraph(fresh, example, {}, [fresh.head]).load_history(graph.history())
    if fresh.grouped.weight.shape != model.grouped.weight.shape:
        problems.append("load_pruning_history does not rebuild the pruned shapes")
    return problems + _fused_problems() + _head_problems()


class _Gated(nn.Module):
    """Phi-3's MLP in small: gate and up projections in one layer, split and multiplied."""

    def __init__(self) -> None:
        super().__init__()
        self.gate_up = nn.Linear(4, 8)
        self.down = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(gate * up)


def _fused_problems() -> list[str]:
    """One channel of a split, multiplied layer drags its partner along (channel_groups)."""
    model = _Gated()
    graph = ChannelGraph(model, torch.zeros(1, 4), {}, [model.down])
    roots = {graph.module_name(m): group for m, group in graph.root_groups()}
    if "gate_up" not in roots or graph.channel_groups(roots["gate_up"]) != 2:
        return ["a chunked, multiplied layer's channel no longer drags its partner (fused parts)"]
    return []


class _Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # timm's Attention, head_dim 2
        batch, tokens, _ = x.shape
        heads = self.qkv.out_features // 6
        qkv = self.qkv(x).reshape(batch, tokens, 3, heads, 2).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        return self.proj((q * k + v).transpose(1, 2).reshape(batch, tokens, heads * 2))


def _head_problems() -> list[str]:
    model = _Heads()
    kwargs = {"num_heads": {model.qkv: 4}, "prune_num_heads": True, "prune_head_dims": False}
    graph = ChannelGraph(model, torch.zeros(1, 3, 8), kwargs, [model.proj])
    graph.prune_heads(tp.importance.MagnitudeImportance(p=2), {model.qkv: 0.5})
    graph.prune_heads(tp.importance.MagnitudeImportance(p=2), {model.qkv: 0.5})
    if model.qkv.out_features != 6 or graph.num_heads[model.qkv] != 1:
        return [f"two head steps of half left {model.qkv.out_features} qkv outputs and "
                f"{graph.num_heads[model.qkv]} heads, expected 6 and 1 (MetaPruner step state)"]  # fmt: skip
    return []
