"""Training to a stopping rule: fixed epochs, or patience (the paper's algorithm 1).

Used for retraining after each pruning step and for pretraining the dense model. The best
epoch's weights are COPIED when they are seen and loaded back at the end, so the weights carried
forward are the ones whose validation metric is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from prunebench.accel import Execution
from prunebench.config.fit_settings import FitSettings
from prunebench.data.base import DataBundle
from prunebench.engine.distill import DistillingTask
from prunebench.engine.training import make_optimizer, train_epoch
from prunebench.pruning.masks import MaskSet
from prunebench.tasks import Task


class EarlyStopping:
    """Algorithm 1 of the paper, for a metric where lower is better (or reversed).

    An epoch improves when strictly better than the best so far (counter reset). It counts
    towards patience only when worse than the best by more than `min_delta`; values within
    `min_delta` of the best neither improve nor count.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, higher_is_better: bool = False):
        self.patience = patience
        self.min_delta = min_delta
        self.sign = -1.0 if higher_is_better else 1.0
        self.best: float | None = None
        self.counter = 0

    def update(self, value: float) -> tuple[bool, bool]:
        """Returns (improved, stop)."""
        v = self.sign * value
        improved = self.best is None or v < self.sign * self.best
        if improved:
            self.best = value
            self.counter = 0
        elif v > self.sign * self.best + self.min_delta:
            self.counter += 1
        return improved, self.counter >= self.patience


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_metric: float
    lr: float
    seconds: float
    improved: bool


@dataclass
class FitResult:
    epochs: int
    best_epoch: int | None  # None when no epoch ran
    best_val: dict[str, float] | None
    stopped_early: bool
    history: list[EpochRecord]


def monitored_value(metrics: dict[str, float], monitor: str, task: Task) -> tuple[float, bool]:
    """(value, higher_is_better) of the monitored validation quantity."""
    if monitor == "val_loss":
        return metrics["loss"], False
    return metrics[task.metric], task.higher_is_better


def copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A real copy of every weight and buffer (not references that later epochs overwrite)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: nn.Module,
    data: DataBundle,
    task: Task,
    settings: FitSettings,
    device: torch.device,
    masks: MaskSet | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    execution: Execution | None = None,
    teacher: nn.Module | None = None,
) -> FitResult:
    """Train with a fresh optimizer until the stopping rule fires; leave the kept weights loaded.

    `execution` says how forward passes run (torch.compile, DDP); `model` keeps the weights.
    With `settings.distill`, training distils from `teacher` (the dense model); validation and
    the stopping rule use the task's own loss and metric."""
    device = torch.device(device)
    train_task = task
    if settings.distill is not None:
        if teacher is None:
            raise ValueError("distillation needs the teacher (the dense model)")
        train_task = DistillingTask(task, teacher, settings.distill)
    train_net, eval_net = (execution or Execution()).modules(model, device)
    optimizer = make_optimizer(
        model.parameters(),
        settings.optimizer,
        settings.lr,
        settings.momentum,
        settings.weight_decay,
    )
    scheduler = settings.scheduler(optimizer) if settings.scheduler else None
    stopper = None
    history: list[EpochRecord] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, best_val, stopped = None, None, False
    for epoch in range(1, settings.max_epochs + 1):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss = train_epoch(train_net, data.train, train_task, optimizer, device, masks)
        if scheduler is not None:
            scheduler.step()
        val = task.evaluate(eval_net, data.val, device)
        value, higher = monitored_value(val, settings.monitor, task)
        if settings.patience is None:
            improved, stop = True, False
        else:
            stopper = stopper or EarlyStopping(settings.patience, settings.min_delta, higher)
            improved, stop = stopper.update(value)
        if improved:
            best_epoch, best_val = epoch, val
            if settings.patience is not None:
                best_state = copy_state(model)
        record = EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val["loss"],
            val_metric=val[task.metric],
            lr=lr,
            seconds=time.perf_counter() - start,
            improved=improved,
        )
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if stop:
            stopped = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(
        epochs=len(history),
        best_epoch=best_epoch,
        best_val=best_val,
        stopped_early=stopped,
        history=history,
    )
