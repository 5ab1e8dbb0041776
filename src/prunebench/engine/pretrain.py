"""Training the dense model every pruning run starts from (or taking the user's weights).

Computing only: the driver decides whether a stored dense model (keyed by `config.base_id`: the
data split, the architecture and its local pretrained weights, the recipe) can be reused, and
writes the one it trains to the results directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunebench.accel import Execution, should_compile
from prunebench.config.fit_settings import FitSettings, epoch_bounds
from prunebench.config.identity import base_id
from prunebench.config.schema import PretrainConfig, RunConfig
from prunebench.data.base import DataBundle
from prunebench.engine.finetune import fit
from prunebench.models.build import build_model
from prunebench.models.weights import load_pretrained
from prunebench.progress import Progress
from prunebench.seeding import seed_everything
from prunebench.tasks import Task


def lr_scheduler_factory(cfg: PretrainConfig):
    """Linear warm-up, then constant or CosineAnnealingWarmRestarts (paper appendix F.4)."""
    if cfg.warmup_epochs == 0 and cfg.scheduler == "constant":
        return None

    def make(optimizer: torch.optim.Optimizer):
        sched = torch.optim.lr_scheduler
        if cfg.scheduler == "cosine_warm_restarts":
            main = sched.CosineAnnealingWarmRestarts(
                optimizer, T_0=cfg.t0, T_mult=cfg.t_mult, eta_min=cfg.eta_min
            )
        else:
            main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
        if cfg.warmup_epochs == 0:
            return main
        warmup = sched.LinearLR(
            optimizer, start_factor=cfg.warmup_start_factor, total_iters=cfg.warmup_epochs
        )
        return sched.SequentialLR(optimizer, [warmup, main], milestones=[cfg.warmup_epochs])

    return make


def pretrain_settings(cfg: PretrainConfig) -> FitSettings:
    return FitSettings(
        optimizer=cfg.optimizer.name,
        lr=cfg.optimizer.lr,
        momentum=cfg.optimizer.momentum,
        weight_decay=cfg.optimizer.weight_decay,
        max_epochs=cfg.epochs,
        patience=cfg.patience,
        min_delta=cfg.min_delta,
        monitor=cfg.monitor,
        scheduler=lr_scheduler_factory(cfg),
    )


@dataclass
class Dense:
    model: nn.Module
    metrics: dict[str, Any]
    base_id: str
    reused: bool


def initial_model(cfg: RunConfig, data: DataBundle) -> nn.Module:
    """The architecture, with the user's local pretrained weights loaded when given."""
    model = build_model(cfg.model, data.info)
    if cfg.model.weights is not None:
        load_pretrained(model, cfg.model, data.info)
    return model


def evaluate_dense(model: nn.Module, data: DataBundle, task: Task, device) -> dict[str, float]:
    val = task.evaluate(model, data.val, device)
    test = task.evaluate(model, data.test, device)
    return {
        "val_loss": val["loss"],
        "val_metric": val[task.metric],
        **{f"test_{k}": v for k, v in test.items()},
    }


def train_dense(
    cfg: RunConfig,
    data: DataBundle,
    task: Task,
    device: torch.device,
    progress: Progress | None = None,
) -> tuple[Dense, list[dict[str, Any]]]:
    """The dense model of this config, trained now (or the local weights as they are), with
    its metrics; and the pretraining epochs' history."""
    progress = progress or Progress()
    bid = base_id(cfg)
    seed_everything(cfg.pretrain.seed)  # before the weights are initialised
    model = initial_model(cfg, data).to(device)
    history: list[dict[str, Any]] = []
    if cfg.pretrain.epochs > 0:
        progress.run_started(bid, f"pretrain {cfg.model.name} on {cfg.data.name}", 0, task.metric)
        progress.step_started(0, 0.0, cfg.pretrain.epochs)
        settings = pretrain_settings(cfg.pretrain)
        compile_ = should_compile(cfg.train.compile, device, epoch_bounds(settings)[0])
        result = fit(
            model,
            data,
            task,
            settings,
            device,
            on_epoch=lambda rec: progress.epoch_done(0, rec, phase="pretrain"),
            execution=Execution(compile=compile_),
        )
        history = [vars(r) for r in result.history]
        progress.run_finished(bid, f"pretrained for {result.epochs} epochs")
    metrics = evaluate_dense(model, data, task, device)
    return Dense(model, metrics, bid, reused=False), history
