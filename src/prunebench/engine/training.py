"""One training epoch and optimizer construction: no I/O, no globals, no policy."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunebench.accel import autocast, optimizer_options, prepare_model
from prunebench.data.base import Batch, to_device
from prunebench.errors import TrainingDiverged
from prunebench.pruning.masks import MaskSet
from prunebench.tasks import Task


def make_optimizer(
    params: Iterable[nn.Parameter], name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    fast = optimizer_options(params[0].device) if params else {}  # fused on CUDA
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, **fast)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **fast)
    raise ValueError(f"unknown optimizer '{name}'")


def no_lone_examples(batches: Iterable[Batch]) -> Iterator[Batch]:
    """The batches, but a batch of ONE example joins the batch before it: BatchNorm cannot
    train on one example (no variance to normalise by), and a training split of any size can
    leave one at the end (90 images in batches of 16 -> ... 16, 10; 81 -> ... 16, 1 -> 16+1)."""
    held: Batch | None = None
    for batch in batches:
        if held is not None and len(batch[1]) == 1 and len(held[1]) > 1:
            held = _joined(held, batch)
            continue
        if held is not None:
            yield held
        held = batch
    if held is not None:
        yield held


def _joined(first: Any, second: Any) -> Any:
    if isinstance(first, torch.Tensor):
        return torch.cat((first, second))
    if isinstance(first, dict):
        return {k: _joined(v, second[k]) for k, v in first.items()}
    return type(first)(_joined(a, b) for a, b in zip(first, second, strict=True))


def train_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    task: Task,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    masks: MaskSet | None = None,
) -> float:
    """Mean training loss per sample. Pruned weights stay exactly zero when `masks` is given.

    On CUDA the forward pass runs under bf16 autocast (accel.py); on the CPU nothing changes.
    """
    model.train()
    prepare_model(model, device)
    loss_sum = torch.zeros((), device=device)
    count = 0
    if any(isinstance(m, _BatchNorm) for m in model.modules()):
        batches = no_lone_examples(batches)
    for batch in batches:
        batch = to_device(batch, device)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device):
            loss = task.loss(model, batch)
        loss.backward()
        if masks is not None:
            masks.mask_grads()
        optimizer.step()
        if masks is not None:
            masks.apply()
        n = len(batch[1])
        loss_sum += loss.detach() * n
        count += n
    # data-parallel ranks agree on the loss (and so on divergence); one sync per epoch
    loss_total, count = task.reduce_sums(
        torch.stack((loss_sum.double(), loss_sum.new_tensor(count, dtype=torch.float64)))
    ).tolist()
    mean = loss_total / max(count, 1)
    if not math.isfinite(mean):
        raise TrainingDiverged(f"training loss became {mean}; lower the learning rate")
    return mean
