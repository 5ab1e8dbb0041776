"""How one training phase runs (a pruning step's fine-tuning, or pretraining), from the config.

Light (no torch): planning keys every step by its effective settings before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prunebench.config.schema import FinetuneConfig

# optimizer -> learning-rate scheduler (pretraining's warm-up / warm restarts)
SchedulerFactory = Callable[[Any], Any]


@dataclass(frozen=True)
class Distill:
    """Distillation from the dense model during fine-tuning (engine/distill.py)."""

    alpha: float  # weight of the soft (teacher) term; 1 - alpha weighs the task loss
    temperature: float


@dataclass(frozen=True)
class FitSettings:
    """`patience=None` trains exactly `max_epochs` epochs and keeps the last weights."""

    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    max_epochs: int
    patience: int | None
    min_delta: float = 0.0
    monitor: str = "val_loss"
    distill: Distill | None = None  # None: plain fine-tuning (left out of step keys)
    scheduler: SchedulerFactory | None = field(default=None, compare=False)


def finetune_settings(cfg: FinetuneConfig, pretrain_lr: float, first_step: bool) -> FitSettings:
    """Settings for one pruning step; the first step may have its own patience and cap."""
    patience = (cfg.first_patience or cfg.patience) if first_step else cfg.patience
    cap = cfg.first_max_epochs if first_step and cfg.first_max_epochs is not None else None
    opt = cfg.optimizer
    return FitSettings(
        optimizer=opt.name,
        lr=opt.lr if opt.lr is not None else pretrain_lr / 10.0,
        momentum=opt.momentum,
        weight_decay=opt.weight_decay,
        max_epochs=cfg.epochs
        if cfg.mode == "fixed"
        else (cap if cap is not None else cfg.max_epochs),
        patience=None if cfg.mode == "fixed" else patience,
        min_delta=cfg.min_delta,
        monitor=cfg.monitor,
        distill=Distill(cfg.distill.alpha, cfg.distill.temperature) if cfg.distill else None,
    )


def epoch_bounds(settings: FitSettings) -> tuple[int, int]:
    """Fewest and most epochs a training phase can take (equal for fixed-length training).

    Patience stops at the earliest after epoch 1 (always an improvement) plus `patience` epochs
    that do not improve; it never runs past `max_epochs`.
    """
    if settings.patience is None:
        return settings.max_epochs, settings.max_epochs
    return min(settings.max_epochs, 1 + settings.patience), settings.max_epochs
