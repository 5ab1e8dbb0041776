"""The appendix F.4 pretraining presets: the LR trajectory they give, and every config file in
configs/ validates once its local paths exist."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from prunebench.config.loading import load_run_config, read_yaml, validate
from prunebench.config.schema import PretrainConfig
from prunebench.engine.pretrain import lr_scheduler_factory
from prunebench.models import MODELS

CONFIGS = Path(__file__).parents[2] / "configs"


def trajectory(cfg: PretrainConfig, epochs: int) -> list[float]:
    """The LR of each epoch, as `fit` sees it (read before the epoch, scheduler stepped after)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.optimizer.lr)
    scheduler = lr_scheduler_factory(cfg)(optimizer)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def by_hand(epoch: int, lr: float, warmup: int, t0: int, t_mult: int, eta_min: float) -> float:
    """Linear warm-up from 0.01 x lr, then cosine annealing with warm restarts (period t0,
    multiplied by t_mult after each restart)."""
    if epoch < warmup:
        return lr * (0.01 + 0.99 * epoch / warmup)
    t, period = epoch - warmup, t0
    while t >= period:
        t -= period
        period *= t_mult
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


@pytest.mark.parametrize(
    ("file", "warmup", "t0"),
    [("cifar100_resnet18.yaml", 100, 50), ("cifar10_efficientnet.yaml", 10, 10),
     ("cifar100_vit.yaml", 10, 10)],
)  # fmt: skip
def test_lr_trajectory_matches_appendix_f4(file, warmup, t0):
    cfg = validate(PretrainConfig, read_yaml(CONFIGS / file)["pretrain"], file)
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.momentum) == ("sgd", 0.1, 0.9)
    assert cfg.optimizer.weight_decay == 5e-4 and cfg.warmup_start_factor == 0.01
    assert (cfg.warmup_epochs, cfg.t0, cfg.t_mult, cfg.eta_min) == (warmup, t0, 2, 1e-5)
    lrs = trajectory(cfg, warmup + 7 * t0 + 3)
    for epoch, lr in enumerate(lrs):
        assert lr == pytest.approx(by_hand(epoch, 0.1, warmup, t0, 2, 1e-5), rel=1e-9, abs=1e-12)
    # landmarks: start, end of warm-up, restarts after t0 and after t0 + 2 t0
    assert lrs[0] == pytest.approx(0.001)
    assert lrs[warmup] == pytest.approx(0.1)
    assert lrs[warmup + t0] == pytest.approx(0.1)
    assert lrs[warmup + 3 * t0] == pytest.approx(0.1)
    assert lrs[warmup + t0 // 2] == pytest.approx((0.1 + 1e-5) / 2)


def local_paths(tmp_path: Path, raw: dict) -> list[str]:
    """Overrides that point the config's local paths at existing (empty) stand-ins."""
    out = []
    data, model = raw.get("data", {}), raw.get("model", {})
    if "root" in data:
        out.append(f"data.root={tmp_path}")
    if "tokenizer" in data:
        out.append(f"data.tokenizer={tmp_path}")
    if "weights" in model:
        out.append(f"model.weights={tmp_path}")
    return out


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_config_files_validate(path, tmp_path):
    """Every shipped config validates: a misspelt model or dataset name fails here."""
    raw = read_yaml(path)
    cfg = load_run_config(path, local_paths(tmp_path, raw))
    assert cfg.model.name in MODELS.names()
    assert cfg.regime.final_target > 0
