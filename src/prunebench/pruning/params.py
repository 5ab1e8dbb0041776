"""What may be pruned, chosen by explicit rules and reported (never silently): parameters for
unstructured pruning, layers whose output channels may go for structured pruning."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prunebench.errors import ConfigError
from prunebench.measure import is_weighted
from prunebench.models.roles import find_classifier, first_conv_name

if TYPE_CHECKING:
    from prunebench.config.schema import PruneConfig


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


def check_prefixes(model: nn.Module, prefixes: Iterable[str], setting: str) -> None:
    """Every prefix names a module or a parent of modules: a misspelt name is an error, never a
    silent no-op."""
    modules = [name for name, _ in model.named_modules()]
    for prefix in prefixes:
        if not any(_matches(name, prefix) for name in modules):
            raise ConfigError(
                f"{setting}: no module named '{prefix}' in the model "
                f"(e.g. '{next(iter(n for n in modules if n), '')}')"
            )


def structured_exclusions(
    model: nn.Module,
    cfg: PruneConfig,
    classifier: str | None,
    hooked: Iterable[nn.Module | nn.Parameter | tuple[nn.Module | nn.Parameter, str]] = (),
    model_name: str = "model",
    example_inputs: Any = None,
    outputs: dict[str, str] | None = None,
) -> dict[str, str]:
    """Layers whose OUTPUT channels structured pruning never removes, each with its reason (it
    is recorded with the run): the classifier (its outputs are the classes), the first conv if
    asked, `prune.exclude`, and what the model's StructuredHooks ignore (modules, or
    parameters such as a ViT's positional embedding). The classifier is `classifier`, else the
    layer whose output becomes the model's output (traced on `example_inputs`). `outputs`
    ({layer: output}, `models.roles.output_layers`) are the layers producing the model's other
    outputs: their width is kept too, unless `prune.include` names them."""
    modules = dict(model.named_modules())
    out: dict[str, str] = {}
    classifier = find_classifier(model, example_inputs, classifier)
    if classifier is not None:
        out[classifier] = "classifier outputs (classes) are never pruned"
    check_prefixes(model, cfg.include, "prune.include")
    for layer, output in (outputs or {}).items():
        if not any(_matches(layer, prefix) for prefix in cfg.include):
            out.setdefault(
                layer,
                f"produces the model's {output}, whose width is kept "
                f"(prune.include=[{layer}] lets it shrink)",
            )
    first = first_conv_name(model)
    if cfg.exclude_first_conv and first is not None:
        out.setdefault(first, "first conv (prune.exclude_first_conv=true)")
    check_prefixes(model, cfg.exclude, "prune.exclude")
    for prefix in cfg.exclude:
        out.setdefault(prefix, "prune.exclude")
    names = {m: n for n, m in modules.items()}
    params = {p: n for n, p in model.named_parameters()}
    for item in hooked:  # a module or parameter, or (it, reason)
        reason = "model hooks (StructuredHooks)"
        if isinstance(item, tuple):
            item, reason = item
        name = names.get(item) if isinstance(item, nn.Module) else params.get(item)
        if name is None:
            raise ConfigError(
                f"model '{model_name}': its StructuredHooks ignore a layer that is not part of "
                "the model"
            )
        out.setdefault(name, reason)
    return out


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
    check_prefixes(model, cfg.exclude, "prune.exclude")

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
    if not is_weighted(module):
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
