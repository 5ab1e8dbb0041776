"""The steps of a run: score -> prune -> evaluate -> fine-tune -> evaluate -> measure.

`plan_steps` turns a config into steps, `RunContext` holds what a run builds once and restores
stored states, `compute_step` computes one step. Executing and storing them (for one run or a
whole sweep, with resume and reuse) is `execute.py`'s job.

Each step has a content key: the key of the state it starts from plus its cumulative target
and its fine-tuning settings (the first key covers the dense model, seed, data and pruning
config). A step's randomness is seeded from its key, and its result (weights, masks, row) is
stored under that key. Hence:
  * a killed run resumes from its last stored step and gives the rows of an uninterrupted run;
  * a step already computed by another run with the same key is reused, not recomputed
    (a hybrid's first step and the one-shot run to the same target; a geometric run to 0.96
    and to 0.99 at the same rate share all but their last steps).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunebench.checkpoints import load_weights
from prunebench.config import SCHEMA_VERSION, RunConfig, digest
from prunebench.criteria import make_criterion
from prunebench.data import DATASETS, DataBundle, take_samples
from prunebench.devices import resolve_device
from prunebench.finetune import FitSettings, finetune_settings, fit
from prunebench.models import MODELS, ModelSpec, build_model
from prunebench.pretrain import Dense, ensure_dense
from prunebench.progress import Progress
from prunebench.pruning import Pruner, make_pruner
from prunebench.schedules import increments
from prunebench.seeding import seed_everything, seed_from_key
from prunebench.store import RUN_COLUMNS, Store, dumps
from prunebench.tasks import Task, make_task

KEY_DECIMALS = 12  # cumulative targets equal to this many decimals share a step


@dataclass(frozen=True)
class StepPlan:
    index: int  # 1-based
    target: float  # this run's schedule value (what its rows report)
    increment: float
    key: str
    parent_key: str
    settings: FitSettings

    @property
    def prune_target(self) -> float:
        """What the pruner gets: the target as the key holds it. Runs that share a key can
        differ in the last bits (constant 0.1 x 7 = 0.7000000000000001 vs a run clipped to 0.7);
        they must prune the same count, alone or together."""
        return round(self.target, KEY_DECIMALS)


def context_key(cfg: RunConfig, base: str) -> str:
    """Key of the dense starting state: everything that shapes every step of this run."""
    data = cfg.data.model_dump(mode="json", exclude={"num_workers", "eval_batch_size"})
    return digest(
        {"base": base, "seed": cfg.seed, "data": data, "prune": cfg.prune.model_dump(mode="json")}
    )


def settings_identity(settings: FitSettings) -> dict[str, Any]:
    return {k: v for k, v in asdict(settings).items() if k != "scheduler"}


def plan_steps(cfg: RunConfig, base: str) -> list[StepPlan]:
    """The run's steps with their keys; each key chains the keys before it."""
    targets = cfg.regime.schedule()
    pretrain_lr = cfg.pretrain.optimizer.lr
    parent = context_key(cfg, base)
    plans = []
    for index, (target, inc) in enumerate(zip(targets, increments(targets), strict=True), 1):
        settings = finetune_settings(cfg.finetune, pretrain_lr, first_step=index == 1)
        key = digest(
            {
                "parent": parent,
                "target": round(target, KEY_DECIMALS),
                "finetune": settings_identity(settings),
            }
        )
        plans.append(StepPlan(index, target, inc, key, parent, settings))
        parent = key
    return plans


class RunContext:
    """What a run builds once: device, data, task, dense model; and how to rebuild a state."""

    def __init__(
        self,
        cfg: RunConfig,
        store: Store | None,
        progress: Progress,
        data: DataBundle | None = None,
        dense: Dense | None = None,
    ):
        """`store` may be None when `dense` is given (a Ray worker never opens the store)."""
        self.cfg = cfg
        self.store = store
        self.progress = progress
        self.device = resolve_device(cfg.device)
        self.data = data or DATASETS.get(cfg.data.name).build(cfg.data, self.device)
        self.task: Task = make_task(self.data.info.task)
        self.spec: ModelSpec = MODELS.get(cfg.model.name)
        self.criterion = make_criterion(cfg.prune.criterion)
        if dense is None:
            if store is None:
                raise ValueError("RunContext needs a store or a dense model")
            dense = ensure_dense(cfg, store, self.data, self.task, self.device, progress)
        self.dense: Dense = dense
        self.dense_params = sum(p.numel() for p in self.dense.model.parameters())

    def dense_state(self) -> tuple[nn.Module, Pruner]:
        model = self.dense.model
        return model, make_pruner(self.cfg.prune, model, self.spec, self.data.info)

    def fresh_dense(self) -> tuple[nn.Module, Pruner]:
        """A private copy of the dense model (the shared one stays unpruned) and a new pruner."""
        model = build_model(self.cfg.model, self.data.info).to(self.device)
        model.load_state_dict(self.dense.model.state_dict())
        return model, make_pruner(self.cfg.prune, model, self.spec, self.data.info)

    def load_state(self, key: str) -> tuple[nn.Module, Pruner]:
        """A fresh model and pruner brought to the state stored under `key`."""
        tensors, meta = self.store.load_checkpoint(key)
        return self.restore(tensors, meta, f"checkpoint {key}")

    def restore(
        self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str = "state"
    ) -> tuple[nn.Module, Pruner]:
        """A fresh model and pruner brought to a state made by `state_tensors`."""
        model = build_model(self.cfg.model, self.data.info).to(self.device)
        pruner = make_pruner(self.cfg.prune, model, self.spec, self.data.info)
        pruner_tensors = {k: v for k, v in tensors.items() if not k.startswith("model::")}
        model = pruner.restore(model, pruner_tensors, meta.get("pruner", {}))
        weights = {
            k.removeprefix("model::"): v for k, v in tensors.items() if k.startswith("model::")
        }
        load_weights(model, weights, source)
        if pruner.masks is not None:
            pruner.masks.apply()
        return model.to(self.device), pruner

    @staticmethod
    def state_tensors(
        model: nn.Module, pruner: Pruner, key: str, parent: str
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Weights, masks and metadata of a state, as CPU copies (what a checkpoint holds)."""
        pruner_tensors, pruner_meta = pruner.state()
        tensors = {f"model::{k}": v for k, v in model.state_dict().items()}
        tensors.update(pruner_tensors)
        tensors = {k: v.detach().to("cpu").clone() for k, v in tensors.items()}
        return tensors, {"key": key, "parent": parent, "pruner": pruner_meta}

    def save_state(self, key: str, model: nn.Module, pruner: Pruner, parent: str) -> None:
        tensors, meta = self.state_tensors(model, pruner, key, parent)
        self.store.save_checkpoint(key, tensors, meta)


def compute_step(
    ctx: RunContext, model: nn.Module, pruner: Pruner, plan: StepPlan, rid: str
) -> tuple[nn.Module, dict[str, Any], list[dict[str, Any]]]:
    """Prune to the plan's cumulative target, fine-tune, and measure; returns the row."""
    started = time.perf_counter()
    seed_everything(seed_from_key(plan.key))
    cfg, task, data, device = ctx.cfg, ctx.task, ctx.data, ctx.device
    needs_data = ctx.criterion.needs_data
    batches = take_samples(data.calibration, cfg.prune.calibration_samples) if needs_data else None
    model = pruner.prune_to(model, plan.prune_target, batches, task)
    pruned_test = task.evaluate(model, data.test, device)
    result = fit(
        model,
        data,
        task,
        plan.settings,
        device,
        masks=pruner.masks,
        on_epoch=lambda record: ctx.progress.epoch_done(plan.index, record),
    )
    best_val = result.best_val or task.evaluate(model, data.val, device)
    test = task.evaluate(model, data.test, device, outcomes=True)  # -> row["test_outcomes"]
    measured = pruner.measure(model)
    row = {
        "run_id": rid,
        "step": plan.index,
        "step_key": plan.key,
        "target": plan.target,
        "increment": plan.increment,
        **measured,
        "compression_ratio": ctx.dense_params / max(measured["params_nonzero"], 1),
        **{f"pruned_test_{k}": v for k, v in pruned_test.items()},
        "best_epoch": result.best_epoch,
        "best_val_loss": best_val["loss"],
        "best_val_metric": best_val[task.metric],
        **{f"test_{k}": v for k, v in test.items()},
        "epochs": result.epochs,
        "stopped_early": int(result.stopped_early),
        "calibration_samples": cfg.prune.calibration_samples if needs_data else None,
        "seconds": time.perf_counter() - started,
        "reused": 0,
    }
    return model, row, [asdict(record) for record in result.history]


def run_fields(ctx: RunContext, pruner: Pruner, model: nn.Module, n_steps: int) -> dict[str, Any]:
    cfg = ctx.cfg
    dense = {f"dense_{k}": v for k, v in ctx.dense.metrics.items() if f"dense_{k}" in RUN_COLUMNS}
    return {
        "name": cfg.name,
        "regime": cfg.regime.name,
        "target": cfg.regime.final_target,
        "structure": cfg.prune.structure,
        "criterion": cfg.prune.criterion,
        "scope": cfg.prune.scope,
        "seed": cfg.seed,
        "model": cfg.model.name,
        "dataset": cfg.data.name,
        "task": ctx.task.name,
        "metric": ctx.task.metric,
        "base_id": ctx.dense.base_id,
        "n_steps": n_steps,
        "schedule_json": dumps(cfg.regime.schedule()),
        "config_json": dumps(cfg.model_dump(mode="json")),
        "prunable_json": dumps(pruner.describe(model)),
        "dense_params": ctx.dense_params,
        "device": str(ctx.device),
        "schema_version": SCHEMA_VERSION,
        **dense,
    }
