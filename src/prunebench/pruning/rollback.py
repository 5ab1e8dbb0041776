"""All-or-nothing pruning: what a model's modules hold, saved before a step and put back when
the step is refused half-way.

Torch-Pruning and the head cuts never change a tensor in place: they replace a layer's
parameters and buffers with smaller ones and update its attributes (`out_channels`,
`num_features`, ...). Saving every module's attribute, parameter, buffer and child references
is therefore enough to put the model back exactly as it was, the same parameter objects included
(an optimizer holding them still holds the model's).

Memory: references cost nothing until a cut replaces a tensor; from then on the saved original
and its smaller successor would both be held, up to a second copy of every layer a step cuts by
its end. So a model whose tensors exceed SPILL_BYTES (PRUNEBENCH_ROLLBACK_SPILL_MB, default 256)
is saved differently: each tensor's bytes go to an unnamed temporary file (raw bytes, no pickle)
and the snapshot keeps only a weak reference, so a replaced tensor is freed at once. A restore
puts back the original object where something still holds it (a tensor the step did not replace)
and rebuilds the others from the file (new objects with the same values, dtype, device and
requires_grad).
"""

from __future__ import annotations

import os
import tempfile
import weakref
from dataclasses import dataclass
from typing import IO, Any

import torch
from torch import nn

_CONTAINERS = ("_parameters", "_buffers", "_modules")
_TENSORS = ("_parameters", "_buffers")
SPILL_BYTES = int(float(os.environ.get("PRUNEBENCH_ROLLBACK_SPILL_MB", 256)) * 2**20)


@dataclass(frozen=True)
class Spilled:
    """A tensor saved to the snapshot's file: a weak reference to it and what rebuilds it."""

    ref: weakref.ref
    offset: int
    shape: torch.Size
    dtype: torch.dtype
    device: torch.device
    parameter: bool
    requires_grad: bool


@dataclass(frozen=True)
class ModuleState:
    module: nn.Module
    attributes: dict[str, Any]
    containers: dict[str, dict[str, Any]]


@dataclass
class Snapshot:
    """Every module's state; `file` holds the spilled tensors' bytes (None: nothing spilled)."""

    states: list[ModuleState]
    file: IO[bytes] | None = None

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _tensor_bytes(model: nn.Module) -> int:
    seen = {id(t): t for m in model.modules() for k in _TENSORS for t in getattr(m, k).values()
            if t is not None}  # fmt: skip
    return sum(t.numel() * t.element_size() for t in seen.values())


def _spill(tensor: torch.Tensor, file: IO[bytes], spilled: dict[int, Spilled]) -> Spilled:
    """The tensor's bytes appended to `file` (once per tensor, however many modules hold it)."""
    if id(tensor) in spilled:
        return spilled[id(tensor)]
    offset = file.seek(0, os.SEEK_END)
    data = tensor.detach().cpu().contiguous().reshape(-1)
    file.write(data.view(torch.uint8).numpy())  # through the buffer: no copy of the bytes
    saved = Spilled(weakref.ref(tensor), offset, tensor.shape, tensor.dtype, tensor.device,
                    isinstance(tensor, nn.Parameter), tensor.requires_grad)  # fmt: skip
    spilled[id(tensor)] = saved
    return saved


def snapshot(model: nn.Module, spill_above: int | None = None) -> Snapshot:
    """What every module of `model` holds now (tensors spilled to a file above `spill_above`
    bytes of them, default SPILL_BYTES)."""
    limit = SPILL_BYTES if spill_above is None else spill_above
    # closed by Snapshot.close (the file lives as long as the snapshot it backs)
    file = tempfile.TemporaryFile() if _tensor_bytes(model) > limit else None  # noqa: SIM115
    spilled: dict[int, Spilled] = {}
    states = []
    for module in model.modules():
        attributes = {k: v for k, v in vars(module).items() if k not in _CONTAINERS}
        containers = {k: dict(getattr(module, k)) for k in _CONTAINERS}
        if file is not None:
            for key in _TENSORS:
                containers[key] = {
                    name: None if t is None else _spill(t, file, spilled)
                    for name, t in containers[key].items()
                }
        states.append(ModuleState(module, attributes, containers))
    return Snapshot(states, file)


def _rebuild(saved: Spilled, file: IO[bytes], rebuilt: dict[int, torch.Tensor]) -> torch.Tensor:
    """The saved tensor itself if it is still alive, else a new one read back from `file`."""
    tensor = saved.ref()
    if tensor is not None:
        return tensor
    if saved.offset not in rebuilt:
        count = saved.shape.numel() * torch.empty((), dtype=saved.dtype).element_size()
        data = torch.empty(count, dtype=torch.uint8)
        file.seek(saved.offset)
        file.readinto(data.numpy())
        values = data.view(saved.dtype).reshape(saved.shape).to(saved.device)
        if saved.parameter:
            values = nn.Parameter(values, requires_grad=saved.requires_grad)
        rebuilt[saved.offset] = values
    return rebuilt[saved.offset]


def restore(snap: Snapshot) -> None:
    """Every module back to its saved attributes, parameters, buffers and children."""
    rebuilt: dict[int, torch.Tensor] = {}
    for state in snap.states:
        held = vars(state.module)
        for key in [k for k in held if k not in _CONTAINERS and k not in state.attributes]:
            del held[key]
        held.update(state.attributes)
        for key, saved in state.containers.items():
            if snap.file is not None and key in _TENSORS:
                saved = {
                    name: value if value is None else _rebuild(value, snap.file, rebuilt)
                    for name, value in saved.items()
                }
            container = held[key]
            container.clear()
            container.update(saved)
