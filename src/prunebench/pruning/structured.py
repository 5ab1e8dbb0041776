"""Structured pruning: Torch-Pruning's dependency graph physically removes channels.

Every cumulative target t is a fraction of the ORIGINAL channels of a ranking scope, counted
from the dense model this pruner was built on, so iterative, geometric and hybrid schedules land
exactly where one-shot pruning to the same t would (no compounding):
  * global:    one ranking over all channel groups (scores divided by their group's mean unless
               prune.group_normalizer=none); every group keeps at least one channel;
  * layerwise: every group keeps (1-t) of its own original channels;
  * preset:    group g keeps (1 - t * r_g / r_mean) of its original channels (pruning.presets).
How many each group (and each attention layer) keeps is pure arithmetic in pruning.targets;
`pruning.channel_groups` finds, scores and cuts the groups and `pruning.head_pruning` the
attention heads, through `pruning.tp_adapter.ChannelGraph` (the one module that touches
Torch-Pruning); this module drives a step all or nothing and checks every output after it. The pruning history (layer names + channel indices, plain JSON) rebuilds the
structure on a fresh dense model: no pickle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prunebench.config.loading import validate
from prunebench.config.schema import PruneConfig
from prunebench.criteria.base import Criterion
from prunebench.criteria.catalog import make_criterion
from prunebench.errors import CheckpointError, ConfigError, PrunebenchError
from prunebench.measure import count_macs
from prunebench.models.auto import AUTO_HOOKS
from prunebench.models.roles import output_layers, output_shapes
from prunebench.models.spec import StructuredHooks
from prunebench.pruning import channel_groups, rollback
from prunebench.pruning.base import Pruner
from prunebench.pruning.guard import GraphBudgetExceeded, build_graph, graph_budget, graph_error
from prunebench.pruning.head_pruning import AttentionHeads
from prunebench.pruning.params import count_nonzero, structured_exclusions
from prunebench.pruning.presets import PRESETS
from prunebench.pruning.targets import (
    global_keep_counts,
    local_keep_counts,
    preset_fractions,
    uniform_keep,
)

if TYPE_CHECKING:
    from prunebench.data.base import Batch
    from prunebench.tasks import Task


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
        try:
            outputs = output_layers(model, example_inputs)
        except ConfigError:  # a model that does not run: building the graph names the layer
            outputs = {}
        self.ignored = structured_exclusions(
            model,
            cfg,
            classifier,
            extra.get("ignored_layers") or [],
            model_name,
            example_inputs,
            outputs,
        )
        # outputs whose producing layer the user let shrink (prune.include)
        self.free_outputs = {out for layer, out in outputs.items() if layer not in self.ignored}
        named = {**dict(model.named_parameters()), **dict(model.named_modules())}
        self.graph = build_graph(
            model, example_inputs, extra, [named[n] for n in self.ignored], model_name
        )
        self.round_to = cfg.round_to or extra.get("round_to")
        self.heads = AttentionHeads(model, self.graph, hooks, cfg, example_inputs, self.ignored)
        self.output_shapes = output_shapes(model, example_inputs)
        ratios = self._ratios()
        try:
            with graph_budget():
                self.groups = channel_groups.discover(
                    self.graph, model, ratios, model_name, self.ignored
                )
        except GraphBudgetExceeded as exc:
            raise graph_error(model, model_name, exc, None) from None
        self.scored_layers = channel_groups.cut_layers(
            self.graph, self.groups, self.heads.layers(), model
        )
        self.original = sum(g.original for g in self.groups)
        preset = cfg.scope == "preset"
        self.mean_ratio = channel_groups.preset_mean(self.groups, model_name) if preset else 1.0
        self.dense_macs = count_macs(model, example_inputs).total
        self.dense_params = sum(p.numel() for p in model.parameters())

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

    @property
    def heads0(self) -> dict[str, int]:
        """Each attention's ORIGINAL head count (the base of every head target)."""
        return self.heads.original

    @property
    def head_layouts(self) -> list:
        """The hooks' head layouts this pruner cuts (those whose trial cut was exact)."""
        return self.heads.layouts

    def _ratios(self) -> dict[str, float] | None:
        if self.cfg.scope != "preset":
            return None
        if self.cfg.preset is not None:
            return dict(PRESETS.get(self.cfg.preset).ratios)
        return dict(self.cfg.layer_ratios or {})

    # ------------------------------------------------------------------ targets
    def keep_counts(
        self, target: float, current: list[int], scores: list[torch.Tensor]
    ) -> list[int]:
        """Channels each group keeps at cumulative target t (never more than it has now)."""
        originals = [g.original for g in self.groups]
        if self.cfg.scope == "global":
            keep = global_keep_counts(
                target, originals, scores, self.cfg.group_normalizer, self.round_to
            )
        elif self.cfg.scope == "preset":
            ratios = [g.ratio for g in self.groups]
            names = [g.root for g in self.groups]
            fractions = preset_fractions(target, ratios, self.mean_ratio, names)
            keep = local_keep_counts(fractions, originals, current, self.round_to)
        else:
            keep = local_keep_counts([target] * len(self.groups), originals, current, self.round_to)
        if not self.cfg.uniform_widths:
            return keep
        peers = [f"{re.sub(r'[0-9]+', '#', g.root)}:{g.original}" for g in self.groups]
        return uniform_keep(peers, keep, current, self.round_to)

    # ------------------------------------------------------------------ pruning
    def scored_params(self, model: nn.Module) -> dict[str, nn.Parameter]:
        """Weights of the layers a channel group or head layout cuts (conv, linear, norms)."""
        return channel_groups.scored_params(model, self.scored_layers)

    def prune_to(
        self,
        model: nn.Module,
        target: float,
        batches: Iterable[Batch] | None = None,
        task: Task | None = None,
    ) -> nn.Module:
        """Prune `model` to cumulative target `target`, all or nothing: a step refused half-way
        (a coupled layer, a changed output, a broken forward) leaves the model and this pruner
        exactly as they were before it, then raises."""
        was_training = model.training
        modules, graph = rollback.snapshot(model), self.graph.save_state()
        cuts = len(self.heads.cuts)
        try:
            self._prune_step(model, target, batches, task)
        except BaseException:
            rollback.restore(modules)
            self.graph.restore_state(graph)
            del self.heads.cuts[cuts:]
            raise
        finally:
            modules.close()
            model.train(was_training)
        return model

    def _prune_step(
        self, model: nn.Module, target: float, batches: Iterable[Batch] | None, task: Task | None
    ) -> None:
        importance = self.criterion.group_importance(
            model, self.scored_params(model), batches, task
        )
        fulls = [self.graph.full_group(g.module) for g in self.groups]
        scores = [
            channel_groups.group_scores(self.graph, g, f, importance, self.model_name)
            for g, f in zip(self.groups, fulls, strict=True)
        ]
        keep = self.keep_counts(target, [len(s) for s in scores], scores)
        self.heads.prune_to(model, target, importance)
        for group, full, score, n_keep in zip(self.groups, fulls, scores, keep, strict=True):
            if n_keep < len(score):
                n_prune = len(score) - n_keep
                channel_groups.cut(self.graph, group, full, score, n_prune, self.model_name)
        if self.hooks is not None and self.hooks.after_step is not None:
            self.hooks.after_step(model, self.graph)
        self._check_output(model)

    def _check_output(self, model: nn.Module) -> None:
        check_outputs(model, self.example_inputs, self.output_shapes, self.free_outputs,
                      self.model_name)  # fmt: skip

    # ------------------------------------------------------------------ records
    def current_channels(self) -> list[int]:
        return [
            self.graph.out_channels(g.module)
            // self.graph.channel_groups(self.graph.full_group(g.module))
            for g in self.groups
        ]

    def measure(self, model: nn.Module) -> dict[str, Any]:
        total, nonzero = count_nonzero(list(model.parameters()))
        kept = sum(self.current_channels())
        macs = count_macs(model, self.example_inputs).total
        return {
            "achieved_sparsity": 1.0 - kept / self.original,  # of the original channels
            "prunable_total": self.original,  # structured: channels, not weights
            "prunable_nonzero": kept,
            "params_total": total,
            "params_nonzero": nonzero,
            "macs_dense": self.dense_macs,
            "macs_pruned": macs,
            "speedup": self.dense_macs / macs if macs else None,
        }

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        meta = {"structure": "structured", "history": self.graph.history(), **self.heads.state()}
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
        self.heads.replay(modules, meta)
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
            "heads": dict(self.heads.original),
            "dense_params": self.dense_params,
            "dense_macs": self.dense_macs,
        }
        if self.cfg.scope == "preset":
            out["preset"] = self.cfg.preset or "layer_ratios"
            out["native_target"] = self.mean_ratio
        return out


def check_outputs(
    model: nn.Module,
    example_inputs: Any,
    before: dict[str, torch.Size],
    free: set[str],
    model_name: str,
) -> None:
    """No model changes the shape of any output through pruning (classes, vocabulary,
    features it returns), except outputs whose layer prune.include lets shrink (`free`)."""
    try:
        shapes = output_shapes(model, example_inputs)
    except Exception as exc:
        raise PrunebenchError(
            f"model '{model_name}' no longer runs after pruning ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}): Torch-Pruning cut a layer whose shape the "
            "forward relies on (e.g. attention without a hook); keep it with prune.exclude "
            "or use prune.structure=unstructured"
        ) from None
    for place, shape in before.items():
        after = shapes.get(place)
        if place in free or after == shape:
            continue
        what = "output shape" if place == "output" else f"{place} shape"
        got = tuple(after) if after is not None else "nothing"
        raise PrunebenchError(
            f"model '{model_name}': pruning changed its {what} from "
            f"{tuple(shape)} to {got}; the layer that produces it must be kept: name it "
            "in prune.exclude or the ModelSpec's classifier"
        )
