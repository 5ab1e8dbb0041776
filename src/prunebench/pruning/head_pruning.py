"""Whole attention heads of a structured pruner, counted from the ORIGINAL heads so that
iterative steps do not compound. Two kinds: heads Torch-Pruning prunes itself (models whose
hooks pass `num_heads`), and the hooks' head layouts (grouped-query attention, fused qkv), cut
directly by `pruning.heads` where a trial cut is exact; the others keep their heads with the
reason recorded among the pruner's ignored layers.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from prunebench.config.schema import PruneConfig
from prunebench.errors import CheckpointError
from prunebench.models.spec import StructuredHooks
from prunebench.pruning.channel_groups import module_names
from prunebench.pruning.heads import counts, head_scores, inexact_cuts, lowest, remove
from prunebench.pruning.targets import head_keep, removal_ratio
from prunebench.pruning.tp_adapter import ChannelGraph


class AttentionHeads:
    """The heads a pruner cuts: original counts, the cuts made so far, and their replay."""

    def __init__(
        self,
        model: nn.Module,
        graph: ChannelGraph,
        hooks: StructuredHooks | None,
        cfg: PruneConfig,
        example_inputs: Any,
        ignored: dict[str, str],
    ) -> None:
        self.graph = graph
        names = module_names(model)
        self.original = {names[m]: n for m, n in graph.num_heads.items()}
        self.layouts = _exact_layouts(model, hooks, cfg, example_inputs, ignored)
        self.kv0 = {h.name: counts(h)[1] for h in self.layouts}
        self.original.update({h.name: counts(h)[0] for h in self.layouts})
        self.cuts: list[list[Any]] = []  # [attention name, removed key/value heads]

    def layers(self) -> list[nn.Module]:
        """The layers the head layouts cut (their projections and output)."""
        return [m for h in self.layouts for m in (*h.projections, h.output)]

    def prune_to(self, model: nn.Module, target: float, importance) -> None:
        """Every attention down to `head_keep(t, ORIGINAL heads)`."""
        if self.graph.prunes_heads:
            names = module_names(model)
            removed = {
                module: current - head_keep(target, self.original[names[module]])
                for module, current in self.graph.num_heads.items()
            }
            if any(n > 0 for n in removed.values()):
                # the ratio handed to Torch-Pruning is of the CURRENT heads: exactly the difference
                ratios = {m: removal_ratio(self.graph.num_heads[m], n) for m, n in removed.items()}
                self.graph.prune_heads(importance, ratios)
        totals = getattr(importance, "totals", None)  # None: random scores per head
        for layout in self.layouts:
            n_cut = counts(layout)[1] - head_keep(target, self.kv0[layout.name])
            if n_cut > 0:
                cut = lowest(head_scores(layout, totals), n_cut)
                remove(layout, cut)
                self.cuts.append([layout.name, cut])

    def state(self) -> dict[str, Any]:
        names = module_names(self.graph.model)
        meta: dict[str, Any] = {
            "num_heads": {names[m]: int(n) for m, n in self.graph.num_heads.items()}
        }
        if self.cuts:
            meta["head_cuts"] = [[name, list(cut)] for name, cut in self.cuts]
        return meta

    def replay(self, modules: dict[str, nn.Module], meta: dict[str, Any]) -> None:
        """The stored head counts and cuts, on the dense model this pruner was built on."""
        for name, count in meta.get("num_heads", {}).items():
            module = modules.get(name)
            if module is None or module not in self.graph.num_heads:
                raise CheckpointError(f"the checkpoint has heads for unknown layer '{name}'")
            self.graph.set_heads(module, int(count))
        layouts = {layout.name: layout for layout in self.layouts}
        for name, cut in meta.get("head_cuts", []):
            if name not in layouts:
                raise CheckpointError(f"the checkpoint cuts heads of unknown attention '{name}'")
            remove(layouts[name], [int(i) for i in cut])
            self.cuts.append([name, [int(i) for i in cut]])


def _exact_layouts(
    model: nn.Module,
    hooks: StructuredHooks | None,
    cfg: PruneConfig,
    example_inputs: Any,
    ignored: dict[str, str],
) -> list:
    """The hooks' head layouts whose cut is exact (pruning.heads.inexact_cuts); the others
    keep their heads: their projections join `ignored` with the reason."""
    if hooks is None or hooks.heads is None:
        return []
    layouts = hooks.heads(model)
    fixed = cfg.uniform_widths and hooks.fixed_heads and hooks.fixed_heads(model, layouts)
    if fixed:  # prune.uniform_widths: heads the model's config cannot express stay
        failed = {layout.name: f"{fixed} (prune.uniform_widths)" for layout in layouts}
    else:
        failed = inexact_cuts(model, layouts, hooks.after_step, example_inputs)
    names = module_names(model)
    for layout in layouts:
        if layout.name in failed:
            for projection in layout.projections:
                ignored[names[projection]] = failed[layout.name]
    return [layout for layout in layouts if layout.name not in failed]
