"""All-or-nothing pruning: what a model's modules hold, saved before a step and put back when
the step is refused half-way.

Torch-Pruning and the head cuts never change a tensor in place: they replace a layer's
parameters and buffers with smaller ones and update its attributes (`out_channels`,
`num_features`, ...). Saving every module's attribute, parameter, buffer and child references
(no copies: the saved tensors are the untouched originals) is therefore enough to put the model
back exactly as it was, the same parameter objects included (an optimizer holding them still
holds the model's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

_CONTAINERS = ("_parameters", "_buffers", "_modules")


@dataclass(frozen=True)
class ModuleState:
    module: nn.Module
    attributes: dict[str, Any]
    containers: dict[str, dict[str, Any]]


def snapshot(model: nn.Module) -> list[ModuleState]:
    """References to what every module of `model` holds now."""
    states = []
    for module in model.modules():
        attributes = {k: v for k, v in vars(module).items() if k not in _CONTAINERS}
        containers = {k: dict(getattr(module, k)) for k in _CONTAINERS}
        states.append(ModuleState(module, attributes, containers))
    return states


def restore(states: list[ModuleState]) -> None:
    """Every module back to its saved attributes, parameters, buffers and children."""
    for state in states:
        held = vars(state.module)
        for key in [k for k in held if k not in _CONTAINERS and k not in state.attributes]:
            del held[key]
        held.update(state.attributes)
        for key, saved in state.containers.items():
            container = held[key]
            container.clear()
            container.update(saved)
