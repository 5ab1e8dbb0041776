"""Structured pruning: Torch-Pruning's dependency graph physically removes channels.

Every cumulative target t is a fraction of the ORIGINAL channels of a ranking scope, counted
from the dense model this pruner was built on, so iterative, geometric and hybrid schedules land
exactly where one-shot pruning to the same t would (no compounding):
  * global:    one ranking over all channel groups (scores divided by their group's mean unless
               prune.group_normalizer=none); every group keeps at least one channel;
  * layerwise: every group keeps (1-t) of its own original channels;
  * preset:    group g keeps (1 - t * r_g / r_mean) of its original channels (pruning.presets).
How many each group (and each attention layer) keeps is pure arithmetic in pruning.targets;
this module finds the channel groups, chooses the channel indices (lowest group scores, ties by
index) and prunes each group through `pruning.tp_adapter.ChannelGraph`, the one module that
touches Torch-Pruning (which also prunes attention heads of models whose hooks pass
`num_heads`). The pruning history (layer names + channel indices, plain JSON) rebuilds the
structure on a fresh dense model: no pickle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prunebench.config.loading import validate
from prunebench.config.schema import PruneConfig
from prunebench.criteria.base import Criterion
from prunebench.criteria.catalog import make_criterion
from prunebench.errors import CheckpointError, ConfigError, PrunebenchError
from prunebench.measure import call, count_macs, is_conv1d
from prunebench.models.auto import AUTO_HOOKS
from prunebench.models.roles import output_tensor
from prunebench.models.spec import StructuredHooks
from prunebench.pruning.base import Pruner
from prunebench.pruning.guard import GraphBudgetExceeded, build_graph, graph_budget, graph_error
from prunebench.pruning.heads import counts as head_counts
from prunebench.pruning.heads import head_scores, inexact_cuts, lowest
from prunebench.pruning.heads import remove as remove_heads
from prunebench.pruning.params import check_prefixes, count_nonzero, structured_exclusions
from prunebench.pruning.presets import PRESETS, match_ratio
from prunebench.pruning.targets import (
    global_keep_counts,
    head_keep,
    local_keep_counts,
    mean_ratio,
    preset_fractions,
    removal_ratio,
)
from prunebench.pruning.tp_adapter import group_width

if TYPE_CHECKING:
    from prunebench.data.base import Batch
    from prunebench.tasks import Task

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


def _module_names(model: nn.Module) -> dict[nn.Module, str]:
    return {m: n for n, m in model.named_modules()}


@torch.no_grad()
def output_shape(model: nn.Module, example_inputs: Any) -> torch.Size:
    was_training = model.training
    model.eval()
    try:
        return output_tensor(call(model, example_inputs)).shape
    finally:
        model.train(was_training)


class StructuredPruner(Pruner):
    """Removes channel groups so that each scope keeps (1 - t) of its original channels."""

    def __init__(
        self,
        model: nn.Module,
        cfg: PruneConfig,
        criterion: Criterion,
        example_inputs: Any,
        hooks: StructuredHooks | None = None,
        classifier: str | None = None,
        model_name: str = "model",
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.criterion = criterion
        self.example_inputs = example_inputs
        self.hooks = hooks
        self.model_name = model_name
        self.extra_meta = dict(meta or {})
        extra = hooks.pruner_kwargs(model) if hooks and hooks.pruner_kwargs else {}
        self.ignored = structured_exclusions(
            model, cfg, classifier, extra.get("ignored_layers") or [], model_name, example_inputs
        )
        named = {**dict(model.named_parameters()), **dict(model.named_modules())}
        self.graph = build_graph(
            model, example_inputs, extra, [named[n] for n in self.ignored], model_name
        )
        self.round_to = cfg.round_to or extra.get("round_to")
        self.heads0 = {_module_names(model)[m]: n for m, n in self.graph.num_heads.items()}
        self.head_layouts = self._exact_head_layouts(model, hooks)
        self.kv0 = {h.name: head_counts(h)[1] for h in self.head_layouts}
        self.heads0.update({h.name: head_counts(h)[0] for h in self.head_layouts})
        self.head_cuts: list[list[Any]] = []  # [attention name, removed key/value heads]
        self.output_shape = output_shape(model, example_inputs)
        try:
            with graph_budget():
                self.groups = self._discover_groups(model)
        except GraphBudgetExceeded as exc:
            raise graph_error(model, model_name, exc, None) from None
        self.original = sum(g.original for g in self.groups)
        self.mean_ratio = self._mean_ratio()
        self.dense_macs = count_macs(model, example_inputs).total
        self.dense_params = sum(p.numel() for p in model.parameters())

    def _exact_head_layouts(self, model: nn.Module, hooks: StructuredHooks | None) -> list:
        """The hooks' head layouts whose cut is exact (pruning.heads.inexact_cuts); the others
        keep their heads (their projections are ignored already) with the reason recorded."""
        if hooks is None or hooks.heads is None:
            return []
        layouts = hooks.heads(model)
        failed = inexact_cuts(model, layouts, hooks.heads, hooks.after_step, self.example_inputs)
        names = _module_names(model)
        for layout in layouts:
            if layout.name in failed:
                for projection in layout.projections:
                    self.ignored[names[projection]] = failed[layout.name]
        return [layout for layout in layouts if layout.name not in failed]

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        example_inputs: Any,
        criterion: str = "magnitude",
        scope: str = "global",
        classifier: str | None = None,
        hooks: StructuredHooks | None = AUTO_HOOKS,
        **options: Any,
    ) -> StructuredPruner:
        """Library entry point for your own model and training loop (mirrors
        `UnstructuredPruner.for_model`): `example_inputs` is one batch as the model takes it
        (a tensor, tuple or dict); `options` are PruneConfig fields (exclude, exclude_first_conv,
        round_to, preset, layer_ratios, group_normalizer). The classifier is traced from the
        output unless named; `hooks` default to the ones chosen from the model (attention heads
        of Hugging Face decoders and timm ViTs)."""
        raw = {"structure": "structured", "criterion": criterion, "scope": scope, **options}
        cfg = validate(PruneConfig, raw, "pruner")
        return cls(model, cfg, make_criterion(cfg.criterion), example_inputs, hooks, classifier)

    # ------------------------------------------------------------------ set-up
    def _ratios(self) -> dict[str, float] | None:
        if self.cfg.scope != "preset":
            return None
        if self.cfg.preset is not None:
            return dict(PRESETS.get(self.cfg.preset).ratios)
        return dict(self.cfg.layer_ratios or {})

    def _discover_groups(self, model: nn.Module) -> list[ChannelGroup]:
        ratios = self._ratios()
        if ratios is not None:
            check_prefixes(model, ratios, "prune.layer_ratios")
        groups = []
        for module, group in self.graph.root_groups():
            name = self.graph.module_name(module)
            units = group_width(group) // self.graph.channel_groups(group)
            prefix, ratio = match_ratio(ratios, name) if ratios is not None else (None, 1.0)
            groups.append(ChannelGroup(name, module, units, ratio, prefix))
        if not groups:
            raise ConfigError(
                f"model '{self.model_name}' has no prunable channel groups "
                f"(ignored: {', '.join(self.ignored) or 'none'})"
            )
        return groups

    def _mean_ratio(self) -> float:
        if self.cfg.scope != "preset":
            return 1.0
        mean = mean_ratio([g.ratio for g in self.groups], [g.original for g in self.groups])
        if mean <= 0:
            raise ConfigError(
                f"the preset prunes no channel group of model '{self.model_name}' "
                f"(group roots: {', '.join(g.root for g in self.groups[:5])}, ...)"
            )
        return mean

    # ------------------------------------------------------------------ targets
    def keep_counts(
        self, target: float, current: list[int], scores: list[torch.Tensor]
    ) -> list[int]:
        """Channels each group keeps at cumulative target t (never more than it has now)."""
        originals = [g.original for g in self.groups]
        if self.cfg.scope == "global":
            return global_keep_counts(
                target, originals, scores, self.cfg.group_normalizer, self.round_to
            )
        if self.cfg.scope == "preset":
            ratios = [g.ratio for g in self.groups]
            names = [g.root for g in self.groups]
            fractions = preset_fractions(target, ratios, self.mean_ratio, names)
        else:
            fractions = [target] * len(self.groups)
        return local_keep_counts(fractions, originals, current, self.round_to)

    # ------------------------------------------------------------------ pruning
    def scored_params(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Weights of the layers a channel group can touch (conv, linear, norms)."""
        out = {}
        for name, module in model.named_modules():
            weight = getattr(module, "weight", None)
            scored = isinstance(module, SCORED) or is_conv1d(module)
            if scored and isinstance(weight, nn.Parameter):
                out[f"{name}.weight" if name else "weight"] = weight
        return out

    def _full_group(self, group: ChannelGroup):
        return self.graph.full_group(group.module)

    def _scores_of(self, group: ChannelGroup, full, importance) -> torch.Tensor:
        try:
            return self._channel_scores(full, importance)
        except Exception as exc:  # Torch-Pruning mapped indices past a layer it cannot follow
            raise PrunebenchError(
                f"model '{self.model_name}': cannot score the channels of '{group.root}' "
                f"({type(exc).__name__}: {exc}): Torch-Pruning maps them through a layer it "
                f"cannot follow; keep them with prune.exclude=[{group.root}] or use "
                "prune.structure=unstructured"
            ) from None

    def _channel_scores(self, full, importance) -> torch.Tensor:
        imp = importance(full)
        if imp is None:  # a group without scored weights: keep its order, lowest index first
            imp = torch.arange(group_width(full), dtype=torch.float32)
        ch_groups = self.graph.channel_groups(full)
        # a unit of a grouped layer is one channel in EACH channel group: its score is the sum
        return imp.detach().float().cpu().view(ch_groups, -1).sum(0)

    def prune_to(
        self,
        model: nn.Module,
        target: float,
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> nn.Module:
        was_training = model.training
        importance = self.criterion.group_importance(
            model, self.scored_params(model), batches, task
        )
        fulls = [self._full_group(g) for g in self.groups]
        scores = [
            self._scores_of(g, f, importance) for g, f in zip(self.groups, fulls, strict=True)
        ]
        current = [len(s) for s in scores]
        keep = self.keep_counts(target, current, scores)
        if self.graph.prunes_heads:
            self._prune_heads(model, target, importance)
        self._cut_heads(target, importance)
        for group, full, score, n_keep in zip(self.groups, fulls, scores, keep, strict=True):
            if n_keep < len(score):
                self._prune_group(group, full, score, len(score) - n_keep)
        if self.hooks is not None and self.hooks.after_step is not None:
            self.hooks.after_step(model, self.graph)
        self._check_output(model)
        model.train(was_training)
        return model

    def _cut_heads(self, target: float, importance) -> None:
        """Heads of the hooks' `heads` layouts, down to `head_keep(t, ORIGINAL kv heads)`."""
        scores = getattr(importance, "scores", None)  # None: random scores per head
        for layout in self.head_layouts:
            _, kv = head_counts(layout)
            n_cut = kv - head_keep(target, self.kv0[layout.name])
            if n_cut > 0:
                cut = lowest(head_scores(layout, scores), n_cut)
                remove_heads(layout, cut)
                self.head_cuts.append([layout.name, cut])

    def _check_output(self, model: nn.Module) -> None:
        """No model changes its output shape through pruning (classes, vocabulary)."""
        try:
            shape = output_shape(model, self.example_inputs)
        except Exception as exc:
            raise PrunebenchError(
                f"model '{self.model_name}' no longer runs after pruning ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())}): Torch-Pruning cut a layer whose shape the "
                "forward relies on (e.g. attention without a hook); keep it with prune.exclude "
                "or use prune.structure=unstructured"
            ) from None
        if shape != self.output_shape:
            raise PrunebenchError(
                f"model '{self.model_name}': pruning changed its output shape from "
                f"{tuple(self.output_shape)} to {tuple(shape)}; the layer that produces the "
                "output must be kept: name it in prune.exclude or the ModelSpec's classifier"
            )

    def _prune_group(self, group: ChannelGroup, full, score: torch.Tensor, n_prune: int) -> None:
        values = score.tolist()
        order = sorted(range(len(values)), key=lambda j: (values[j], j))
        chosen = sorted(order[:n_prune])
        size = len(score)
        idxs = [i + k * size for k in range(self.graph.channel_groups(full)) for i in chosen]
        try:
            if not self.graph.prune(group.module, idxs):
                raise PrunebenchError("it would remove every channel of a coupled layer")
        except PrunebenchError as exc:
            raise PrunebenchError(
                f"model '{self.model_name}': cannot prune layer '{group.root}': {exc}"
            ) from None
        except Exception as exc:
            raise PrunebenchError(
                f"model '{self.model_name}': Torch-Pruning failed on layer '{group.root}': "
                f"{type(exc).__name__}: {exc}"
            ) from None

    def _prune_heads(self, model: nn.Module, target: float, importance) -> None:
        """Attention heads, per layer, down to `head_keep(t, ORIGINAL heads)`: the ratio handed
        to Torch-Pruning is of the CURRENT heads and removes exactly the difference."""
        names = _module_names(model)
        removed = {
            module: current - head_keep(target, self.heads0[names[module]])
            for module, current in self.graph.num_heads.items()
        }
        if any(n > 0 for n in removed.values()):
            ratios = {m: removal_ratio(self.graph.num_heads[m], n) for m, n in removed.items()}
            self.graph.prune_heads(importance, ratios)

    # ------------------------------------------------------------------ records
    def current_channels(self) -> list[int]:
        return [
            self.graph.out_channels(g.module) // self.graph.channel_groups(self._full_group(g))
            for g in self.groups
        ]

    def measure(self, model: nn.Module) -> dict[str, Any]:
        total, nonzero = count_nonzero(list(model.parameters()))
        kept = sum(self.current_channels())
        macs = count_macs(model, self.example_inputs).total
        row = {
            "achieved_sparsity": 1.0 - kept / self.original,  # of the original channels
            "prunable_total": self.original,  # structured: channels, not weights
            "prunable_nonzero": kept,
            "params_total": total,
            "params_nonzero": nonzero,
            "macs_dense": self.dense_macs,
            "macs_pruned": macs,
            "speedup": self.dense_macs / macs if macs else None,
        }
        return row

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        names = _module_names(self.graph.model)
        heads = {names[m]: int(n) for m, n in self.graph.num_heads.items()}
        meta = {"structure": "structured", "history": self.graph.history(), "num_heads": heads}
        if self.head_cuts:
            meta["head_cuts"] = [[name, list(cut)] for name, cut in self.head_cuts]
        return {}, {**self.extra_meta, **meta}

    def restore(self, model, tensors, meta):
        """Replay the stored pruning history on the dense model this pruner was built on."""
        if meta.get("structure") != "structured" or "history" not in meta:
            raise CheckpointError("the checkpoint does not hold a structured pruning history")
        history = [[n, bool(o), [int(i) for i in idxs]] for n, o, idxs in meta["history"]]
        modules = dict(model.named_modules())
        for name, _, _ in history:
            if name not in modules:
                raise CheckpointError(
                    f"the pruning history names layer '{name}', which model "
                    f"'{self.model_name}' does not have"
                )
        try:
            self.graph.load_history(history)
        except Exception as exc:
            raise CheckpointError(
                f"the pruning history does not fit model '{self.model_name}': "
                f"{type(exc).__name__}: {exc}"
            ) from None
        for name, count in meta.get("num_heads", {}).items():
            module = modules.get(name)
            if module is None or module not in self.graph.num_heads:
                raise CheckpointError(f"the checkpoint has heads for unknown layer '{name}'")
            self.graph.set_heads(module, int(count))
        layouts = {layout.name: layout for layout in self.head_layouts}
        for name, cut in meta.get("head_cuts", []):
            if name not in layouts:
                raise CheckpointError(f"the checkpoint cuts heads of unknown attention '{name}'")
            remove_heads(layouts[name], [int(i) for i in cut])
            self.head_cuts.append([name, [int(i) for i in cut]])
        if self.hooks is not None and self.hooks.after_step is not None:
            self.hooks.after_step(model, self.graph)
        self._check_output(model)
        return model

    def describe(self, model: nn.Module) -> dict[str, Any]:
        out: dict[str, Any] = {
            "structure": "structured",
            "scope": self.cfg.scope,
            "round_to": self.round_to,
            "ignored": dict(self.ignored),
            "original_channels": self.original,
            "groups": [
                {"root": g.root, "channels": g.original, "ratio": g.ratio, "prefix": g.prefix}
                for g in self.groups
            ],
            "heads": dict(self.heads0),
            "dense_params": self.dense_params,
            "dense_macs": self.dense_macs,
        }
        if self.cfg.scope == "preset":
            out["preset"] = self.cfg.preset or "layer_ratios"
            out["native_target"] = self.mean_ratio
        return out
