"""Which parameters may be pruned, chosen by explicit rules and reported (never silently)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prunebench.errors import ConfigError
from prunebench.models.roles import find_classifier, first_conv_name

if TYPE_CHECKING:
    from prunebench.config import PruneConfig

WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass(frozen=True)
class PrunableSet:
    """Parameter names that may be pruned, and every other parameter with the reason why not."""

    names: list[str]
    excluded: dict[str, str] = field(default_factory=dict)

    def describe(self, model: nn.Module) -> dict:
        params = dict(model.named_parameters())
        return {
            "prunable": {n: list(params[n].shape) for n in self.names},
            "excluded": dict(self.excluded),
        }


def _matches(module_name: str, prefix: str) -> bool:
    return module_name == prefix or module_name.startswith(prefix + ".")


def select_prunable(
    model: nn.Module,
    cfg: PruneConfig,
    classifier: str | None = None,
    example_inputs: Any = None,
) -> PrunableSet:
    """Weights of Conv and Linear layers (and their biases if asked), minus the exclusions.
    The classifier (needed only to exclude it) is `classifier`, else found from the output."""
    if cfg.exclude_classifier:
        classifier = find_classifier(model, example_inputs, classifier)
    first_conv = first_conv_name(model)
    modules = dict(model.named_modules())
    for prefix in cfg.exclude:
        if not any(_matches(name, prefix) for name in modules):
            raise ConfigError(
                f"prune.exclude: no module named '{prefix}' in the model "
                f"(e.g. '{next(iter(n for n in modules if n), '')}')"
            )

    names: list[str] = []
    excluded: dict[str, str] = {}
    first: dict[int, str] = {}  # tied weights: one tensor, several (module, name) owners
    owners: list[tuple[str, int, str | None]] = []
    for module_name, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{pname}" if module_name else pname
            first.setdefault(id(param), full)
            reason = _exclusion_reason(module_name, module, pname, cfg, first_conv, classifier)
            owners.append((full, id(param), reason))
    # A tied tensor is prunable only if every owner allows it (GPT-Neo's lm_head shares the
    # token embedding's weight: pruning it would silently prune the embedding).
    blocked = {pid: f"{name}: {reason}" for name, pid, reason in owners if reason}
    for full, pid, reason in owners:
        if first[pid] != full:
            excluded[full] = f"tied to '{first[pid]}'" + (
                f" ({blocked[pid]})" if pid in blocked else ""
            )
        elif pid in blocked:
            excluded[full] = reason or f"tied to an excluded layer ({blocked[pid]})"
        else:
            names.append(full)
    if not names:
        raise ConfigError("no prunable parameters are left; relax prune.exclude* settings")
    return PrunableSet(names=names, excluded=excluded)


def _exclusion_reason(
    module_name: str,
    module: nn.Module,
    pname: str,
    cfg: PruneConfig,
    first_conv: str | None,
    classifier: str | None,
) -> str | None:
    if any(_matches(module_name, prefix) for prefix in cfg.exclude):
        return "prune.exclude"
    if not isinstance(module, WEIGHTED):
        return f"{type(module).__name__} parameters are not pruned"
    if pname == "bias" and not cfg.include_biases:
        return "bias (prune.include_biases=false)"
    if pname not in ("weight", "bias"):
        return f"parameter '{pname}' is not a layer weight"
    if module_name == first_conv and cfg.exclude_first_conv:
        return "first conv (prune.exclude_first_conv=true)"
    if module_name == classifier and cfg.exclude_classifier:
        return "classifier (prune.exclude_classifier=true)"
    return None


def count_nonzero(tensors: list[torch.Tensor]) -> tuple[int, int]:
    """(total, nonzero) counted from the values themselves."""
    total = sum(t.numel() for t in tensors)
    nonzero = sum(int(torch.count_nonzero(t)) for t in tensors)
    return total, nonzero
