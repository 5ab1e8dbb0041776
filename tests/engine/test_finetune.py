"""Patience (algorithm 1), best-checkpoint copies, and per-step fine-tuning settings."""

from __future__ import annotations

import pytest
import torch

from prunebench.config.fit_settings import FitSettings, finetune_settings
from prunebench.config.schema import FinetuneConfig, OptimizerConfig
from prunebench.data.base import DataBundle
from prunebench.data.info import DataInfo
from prunebench.engine.finetune import EarlyStopping, fit
from prunebench.models.small import build_small_cnn
from prunebench.tasks import Classification


def test_early_stopping_follows_algorithm_1_lower_is_better():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    values = [1.0, 0.9, 0.95, 1.05, 0.85, 1.0, 1.2]
    got = [stopper.update(v) for v in values]
    assert got == [
        (True, False),  # first value is the best so far
        (True, False),
        (False, False),  # 0.95 is within min_delta of 0.9: neither improves nor counts
        (False, False),  # 1.05 > 0.9 + 0.1: counter 1
        (True, False),  # 0.85 improves: counter reset
        (False, False),  # 1.0 > 0.95: counter 1
        (False, True),  # counter 2 == patience: stop
    ]
    assert stopper.best == 0.85


@pytest.mark.parametrize("higher", [False, True])
def test_a_tie_with_the_best_neither_improves_nor_counts(higher):
    """Algorithm 1: improvement is STRICT; with min_delta 0 an equal value is not worse either."""
    stopper = EarlyStopping(patience=1, min_delta=0.0, higher_is_better=higher)
    worse = 0.4 if higher else 0.6
    got = [stopper.update(v) for v in [0.5, 0.5, 0.5, worse]]
    assert got == [(True, False), (False, False), (False, False), (False, True)]


def test_early_stopping_higher_is_better():
    stopper = EarlyStopping(patience=1, min_delta=0.02, higher_is_better=True)
    got = [stopper.update(v) for v in [0.5, 0.6, 0.59, 0.55]]
    assert got == [(True, False), (True, False), (False, False), (False, True)]


class ScriptedValidation(Classification):
    """Real training, but validation losses follow a script (to place the best epoch)."""

    def __init__(self, losses):
        self.losses = list(losses)
        self.calls = 0

    def evaluate(self, model, batches, device):
        loss = self.losses[self.calls]
        self.calls += 1
        return {"loss": loss, "top1": 1 - loss, "top5": 1.0}


def tiny_bundle():
    torch.manual_seed(0)
    batches = [(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))) for _ in range(3)]
    return DataBundle(
        info=DataInfo("classification", 10, 1, 8),
        train=batches,
        val=batches,
        test=batches,
        calibration=batches,
        sizes={"train": 24, "val": 24, "test": 24},
    )


def settings(**overrides) -> FitSettings:
    base = dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.0, max_epochs=10, patience=2)
    return FitSettings(**{**base, **overrides})


def test_fit_keeps_a_copy_of_the_best_epoch_not_the_last():
    torch.manual_seed(0)
    model = build_small_cnn(DataInfo("classification", 10, 1, 8), width=4)
    task = ScriptedValidation([0.5, 0.3, 0.4, 0.6, 0.7])
    snapshots = {}

    def snapshot(record):
        snapshots[record.epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    result = fit(model, tiny_bundle(), task, settings(), torch.device("cpu"), on_epoch=snapshot)
    assert result.epochs == 4 and result.stopped_early  # 0.4, 0.6 count; patience 2
    assert result.best_epoch == 2
    assert result.best_val["loss"] == 0.3
    final = model.state_dict()
    # The weights carried forward are epoch 2's (the peer code kept references: epoch 4's).
    assert all(torch.equal(final[k], snapshots[2][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[4][k]) for k in final)


def test_fit_fixed_epochs_keeps_last_weights():
    torch.manual_seed(0)
    model = build_small_cnn(DataInfo("classification", 10, 1, 8), width=4)
    task = ScriptedValidation([0.5, 0.3, 0.4])
    snapshots = {}

    def snapshot(record):
        snapshots[record.epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    result = fit(
        model,
        tiny_bundle(),
        task,
        settings(max_epochs=3, patience=None),
        torch.device("cpu"),
        on_epoch=snapshot,
    )
    assert result.epochs == 3 and not result.stopped_early
    final = model.state_dict()
    assert all(torch.equal(final[k], snapshots[3][k]) for k in final)


def test_fit_with_zero_epochs_changes_nothing():
    torch.manual_seed(0)
    model = build_small_cnn(DataInfo("classification", 10, 1, 8), width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit(model, tiny_bundle(), Classification(), settings(max_epochs=0), "cpu")
    assert result.epochs == 0 and result.best_epoch is None
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)


def test_finetune_settings_defaults_and_first_step():
    cfg = FinetuneConfig(patience=3, first_patience=20, max_epochs=30, first_max_epochs=100)
    first = finetune_settings(cfg, pretrain_lr=0.1, first_step=True)
    later = finetune_settings(cfg, pretrain_lr=0.1, first_step=False)
    assert first.lr == later.lr == 0.1 / 10  # default: a tenth of pretraining's
    assert (first.patience, first.max_epochs) == (20, 100)
    assert (later.patience, later.max_epochs) == (3, 30)
    explicit = FinetuneConfig(optimizer=OptimizerConfig(name="adamw", lr=3e-4), mode="fixed")
    fixed = finetune_settings(explicit, pretrain_lr=0.1, first_step=True)
    assert (fixed.optimizer, fixed.lr, fixed.patience, fixed.max_epochs) == ("adamw", 3e-4, None, 5)


@pytest.mark.parametrize("norm", [True, False])
def test_a_batchnorm_model_never_trains_on_a_batch_of_one(norm):
    """17 examples in batches of 8 leave a last batch of one, on which BatchNorm cannot train
    ('Expected more than 1 value per channel'): it joins the batch before. A model without
    BatchNorm gets the batches as they are (its rows stay those of earlier versions)."""
    from prunebench.engine.training import make_optimizer, train_epoch

    torch.manual_seed(0)
    layers = [torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8) if norm else torch.nn.Identity()]
    model = torch.nn.Sequential(*layers, torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x, y = torch.randn(17, 4), torch.randint(0, 3, (17,))
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 17, 8)]
    seen: list[int] = []
    model[0].register_forward_pre_hook(lambda _m, args: seen.append(len(args[0])))
    optimizer = make_optimizer(model.parameters(), "sgd", 0.1, 0.0, 0.0)
    loss = train_epoch(model, batches, Classification(), optimizer, torch.device("cpu"))
    assert seen == ([8, 9] if norm else [8, 8, 1])
    assert loss > 0
