"""The one module that touches Torch-Pruning (written for torch-pruning==1.6.1, pinned).

Everything prunebench needs from it goes through here: building the dependency graph (a
`MetaPruner`, kept for the attention heads it prunes), the channel groups and their coupled
slices, pruning chosen indices, the JSON pruning history, and a pruner for transformers'
Conv1D. Several of these are private members (`_get_channel_groups`, `_is_atten_group`,
`DG._module2name`, `_scope_initial_channels`, `_prune_parameter_and_grad`), and the head step
resets MetaPruner state by hand; `tp_internals.py` lists every member used and checks that
they are there and behave (tests/pruning/test_tp_adapter.py), so a release that changes one
fails one test that names it instead of pruning wrongly.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch_pruning as tp
from torch import nn

Importance = tp.importance.Importance  # base class of the group scores (criteria/groups.py)

_fn = tp.pruner.function
OUT_FNS = (
    _fn.prune_conv_out_channels,
    _fn.prune_linear_out_channels,
    _fn.prune_depthwise_conv_out_channels,
)
IN_FNS = (_fn.prune_conv_in_channels, _fn.prune_linear_in_channels)
NORM_FNS = (_fn.prune_batchnorm_out_channels, _fn.prune_layernorm_out_channels)

# MetaPruner arguments that prunebench sets itself (targets come from the schedule).
OWN_KWARGS = {"pruning_ratio", "pruning_ratio_dict", "global_pruning", "iterative_steps",
              "head_pruning_ratio", "head_pruning_ratio_dict", "importance", "round_to",
              "ignored_layers", "iterative_pruning_ratio_scheduler", "max_pruning_ratio"}  # fmt: skip


# What Torch-Pruning reads from a traced autograd node once its graph is built (the index
# mapping redone at every get_pruning_group): the node's name and these saved sizes.
TRACED_FACTS = ("_saved_dim", "_saved_end", "_saved_self_sizes", "_saved_self_sym_sizes",
                "_saved_split_size", "_saved_split_sizes", "_saved_start", "_saved_step")  # fmt: skip


class TracedOp:
    """Stands in for a traced autograd node once the graph is built: its name and saved sizes,
    not the node, which would keep the traced forward's activations (every layer's, for one
    example batch) alive as long as the graph."""

    def __init__(self, grad_fn: Any) -> None:
        self._name, self._text = grad_fn.name(), str(grad_fn)
        for fact in TRACED_FACTS:
            if hasattr(grad_fn, fact):
                setattr(self, fact, getattr(grad_fn, fact))

    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return self._text


def forget_trace(dg: Any) -> None:
    """Every traced autograd node the graph holds (its nodes' `grad_fn`, slice and elementwise
    ops) replaced by its TracedOp, so the traced forward is freed."""
    holders = [(n, "grad_fn") for n in dg.module2node.values()]
    holders += [(n.module, a) for n in dg.module2node.values() for a in ("grad_fn", "_grad_fn")
                if isinstance(n.module, nn.Module) and a in vars(n.module)]  # fmt: skip
    originals = [getattr(holder, attr) for holder, attr in holders]  # alive while mapped
    nodes = [g for g in originals if hasattr(g, "next_functions")]  # (some hold a name only)
    stand_ins = {id(g): TracedOp(g) for g in nodes}
    for (holder, attr), grad_fn in zip(holders, originals, strict=True):
        if id(grad_fn) in stand_ins:
            setattr(holder, attr, stand_ins[id(grad_fn)])


@dataclass(frozen=True)
class Slice:
    """One coupled slice of a channel group: `kind` is "out", "in" or "norm" (how the
    layer's weight is cut), None for anything else; `root_idxs` map `idxs` to the root's."""

    layer: nn.Module
    kind: str | None
    idxs: list[int]
    root_idxs: list[int | None]


def _kind(layer: nn.Module, fn: Any) -> str | None:
    if getattr(fn, "__self__", None) is not None and isinstance(fn.__self__, Conv1DPruner):
        fn = {"prune_out_channels": OUT_FNS[1], "prune_in_channels": IN_FNS[1]}.get(fn.__name__, fn)
    if fn in OUT_FNS:
        return "out"
    if fn in IN_FNS:
        return "in"
    return "norm" if fn in NORM_FNS else None


def slices(group: Any) -> Iterator[Slice]:
    """The layers a channel group cuts, as plain records."""
    for item in group:
        layer = item.dep.layer
        kind = _kind(layer, item.dep.pruning_fn)
        yield Slice(layer, kind, list(item.idxs), list(item.root_idxs))


def group_width(group: Any) -> int:
    """Indices of the group's root (all channel groups of a grouped layer together)."""
    return len(group[0].idxs)


class Conv1DPruner(_fn.BasePruningFunc):
    """Torch-Pruning support for transformers' Conv1D (a Linear with a transposed weight)."""

    def prune_out_channels(self, layer: nn.Module, idxs) -> nn.Module:
        keep = sorted(set(range(layer.nf)) - set(idxs))
        layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 1)
        layer.bias = self._prune_parameter_and_grad(layer.bias, keep, 0)
        layer.nf = len(keep)
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs) -> nn.Module:
        keep = sorted(set(range(layer.weight.shape[0])) - set(idxs))
        layer.weight = self._prune_parameter_and_grad(layer.weight, keep, 0)
        layer.nx = len(keep)
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return layer.nf

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.weight.shape[0]


class ChannelGraph:
    """Torch-Pruning's dependency graph and MetaPruner behind the calls prunebench makes.
    `num_heads` (attention module -> heads) is what the models' `after_step` hooks read."""

    def __init__(
        self, model: nn.Module, example_inputs: Any, kwargs: dict[str, Any], ignored: list
    ) -> None:
        kwargs = {k: v for k, v in kwargs.items() if k not in OWN_KWARGS}
        with warnings.catch_warnings():
            # Torch-Pruning prunes parameters held outside layers (layer scales, class tokens)
            # along their last dimension, which is what prunebench wants: not the user's news
            warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
            self.meta = tp.pruner.MetaPruner(
                model,
                example_inputs,
                importance=tp.importance.RandomImportance(),  # replaced at every head step
                pruning_ratio=0.0,
                ignored_layers=ignored,
                num_heads=dict(kwargs.pop("num_heads", {}) or {}),
                # fresh dicts: Torch-Pruning's defaults are shared mutable arguments
                in_channel_groups=dict(kwargs.pop("in_channel_groups", {}) or {}),
                out_channel_groups=dict(kwargs.pop("out_channel_groups", {}) or {}),
                **kwargs,
            )
        self.model = model
        self.dg = self.meta.DG
        forget_trace(self.dg)
        self._parts: dict[nn.Module, int] = {}  # fused layers' parts (channel_groups)

    @property
    def num_heads(self) -> dict[nn.Module, int]:
        return self.meta.num_heads

    @property
    def prunes_heads(self) -> bool:
        """Torch-Pruning removes whole attention heads (hooks that pass num_heads)."""
        return bool(self.meta.num_heads) and bool(self.meta.prune_num_heads)

    def module_name(self, module: nn.Module) -> str:
        return self.dg._module2name[module]

    def root_groups(self) -> Iterator[tuple[nn.Module, Any]]:
        """(root module, full group) of every channel group Torch-Pruning may cut, except
        attention groups whose whole heads (not head dims) it prunes."""
        meta = self.meta
        for group in self.dg.get_all_groups(
            ignored_layers=meta.ignored_layers, root_module_types=meta.root_module_types
        ):
            heads_only = meta.num_heads and not meta.prune_head_dims
            if heads_only and meta._is_atten_group(group)[0]:
                continue
            yield group[0].dep.target.module, group

    def channel_groups(self, group: Any) -> int:
        """Channel groups of the group's layers (grouped convs, heads): a unit is one
        channel in each. A fused layer whose output is split in k parts that are then
        multiplied (Phi-3's gate_up_proj) has k too: one of its channels drags its partner in
        each other part along, so a unit is the k of them."""
        groups = self.meta._get_channel_groups(group)
        return groups if groups > 1 else self._fused_parts(group[0].dep.target.module)

    def _fused_parts(self, module: nn.Module) -> int:
        if module not in self._parts:
            fn = self.dg.get_pruner_of_module(module).prune_out_channels
            dragged = sorted(self.dg.get_pruning_group(module, fn, [0])[0].idxs)
            k, width = len(dragged), self.out_channels(module)
            evenly = k > 1 and width % k == 0 and dragged == [m * (width // k) for m in range(k)]
            self._parts[module] = k if evenly else 1
        return self._parts[module]

    def out_channels(self, module: nn.Module) -> int:
        return self.dg.get_out_channels(module)

    def full_group(self, module: nn.Module) -> Any:
        """The group of every output channel of `module` (what importance scores)."""
        fn = self.dg.get_pruner_of_module(module).prune_out_channels
        return self.dg.get_pruning_group(module, fn, list(range(self.out_channels(module))))

    def prune(self, module: nn.Module, idxs: list[int]) -> bool:
        """Remove output channels `idxs` of `module` and everything coupled to them; False
        (nothing done) when that would remove every channel of a coupled layer."""
        fn = self.dg.get_pruner_of_module(module).prune_out_channels
        group = self.dg.get_pruning_group(module, fn, idxs)
        if not self.dg.check_pruning_group(group):
            return False
        group.prune()
        return True

    def prune_heads(self, importance: Any, removal: dict[nn.Module, float]) -> None:
        """One MetaPruner step that removes, per attention module, the given fraction of its
        CURRENT heads and nothing else; MetaPruner's step state is reset first."""
        meta = self.meta
        for module, ratio in removal.items():
            meta.head_pruning_ratio_dict[module] = [0.0, ratio]
        meta.importance = importance
        meta.per_step_pruning_ratio = [0.0, 1e-9]  # makes head groups prune; others are skipped
        meta.pruning_ratio_dict = {}
        meta._scope_initial_channels = {}
        meta.current_step = 0
        for group in meta.step(interactive=True):
            if meta._is_atten_group(group)[0]:
                group.prune()

    def set_heads(self, module: nn.Module, count: int) -> None:
        """Head count of an attention module rebuilt from a history (channel groups follow)."""
        self.meta.num_heads[module] = count
        self.meta.out_channel_groups[module] = count

    def history(self) -> list[list[Any]]:
        """[layer name, output channels?, removed indices] per cut, as plain JSON."""
        return [
            [str(name), bool(out), [int(i) for i in idxs]]
            for name, out, idxs in self.dg.pruning_history()
        ]

    def load_history(self, history: list[list[Any]]) -> None:
        self.dg.load_pruning_history(history)

    def save_state(self) -> GraphState:
        """What a pruning step changes in the graph besides the model: its history and the
        head counts (the model's modules are saved by `pruning.rollback`)."""
        meta = self.meta
        return GraphState(
            list(self.dg._pruning_history),
            dict(meta.num_heads),
            dict(meta.out_channel_groups),
            dict(meta.in_channel_groups),
        )

    def restore_state(self, state: GraphState) -> None:
        """The graph as `save_state` found it (a refused step leaves no trace)."""
        self.dg._pruning_history = list(state.history)
        for live, saved in (
            (self.meta.num_heads, state.num_heads),
            (self.meta.out_channel_groups, state.out_channel_groups),
            (self.meta.in_channel_groups, state.in_channel_groups),
        ):
            live.clear()
            live.update(saved)


@dataclass(frozen=True)
class GraphState:
    history: list[Any]
    num_heads: dict[nn.Module, int]
    out_channel_groups: dict[nn.Module, int]
    in_channel_groups: dict[nn.Module, int]


def traced_node(tb: TracebackType | None):
    """The Torch-Pruning graph node the innermost frame that holds one was working on (its
    first such local: e.g. `reshape_node` where a reshape's index mapping failed)."""
    found = None
    while tb is not None:
        nodes = [
            value
            for value in tb.tb_frame.f_locals.values()
            if isinstance(value, tp.dependency.Node)
        ]
        found = nodes[0] if nodes else found
        tb = tb.tb_next
    return found


def nearest_layer(node, names: dict[nn.Module, str]):
    """The nearest nn.Module of the model at or before `node` (operations have none)."""
    queue, seen = deque([node]), set()
    while queue:
        current = queue.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if current.module in names:
            return current.module
        queue += list(getattr(current, "inputs", []))
    return None


def node_label(node) -> str:
    """The operation a graph node stands for (Reshape, Concat, ...) or its name."""
    return type(node.module).__name__.strip("_").removesuffix("Op")
