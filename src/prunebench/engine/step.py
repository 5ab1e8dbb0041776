"""One pruning step: score -> prune -> evaluate -> fine-tune -> evaluate -> measure -> row.

`RunContext` holds what a run builds once (device, data, task, criterion, the dense model) and
brings a model to a stored state; `compute_step` computes one planned step (`plan.StepPlan`).
Nothing here reads or writes the results directory: the driver does (`driver.py`), for one run
and for sweeps alike, whichever executor computes the step.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prunebench.accel import Execution, should_compile
from prunebench.config.fit_settings import FitSettings, epoch_bounds
from prunebench.config.schema import RunConfig
from prunebench.criteria.catalog import make_criterion
from prunebench.data.base import DataBundle, take_samples
from prunebench.devices import resolve_device
from prunebench.engine.finetune import fit
from prunebench.engine.plan import StepPlan
from prunebench.engine.pretrain import Dense
from prunebench.engine.pruned_state import Tensors, pack, restore
from prunebench.measure import latency_pair
from prunebench.models.build import build_model, model_source, model_spec
from prunebench.models.spec import ModelSpec
from prunebench.progress import Progress
from prunebench.pruning.base import Pruner
from prunebench.pruning.factory import make_pruner
from prunebench.seeding import seed_everything, seed_from_key
from prunebench.tasks import Task, make_task

if TYPE_CHECKING:
    from prunebench.engine.executors.ddp_rank import DataParallel


class RunContext:
    """What a run builds once: device, data, task, criterion, dense model.

    With `parallel` (one rank of `prunebench run --nproc N`) the context sees this rank's shard
    of every training and evaluation batch, its metrics are summed over all ranks, and fitting
    goes through DistributedDataParallel; calibration data stays whole, so every rank scores and
    prunes alike.
    """

    def __init__(
        self,
        cfg: RunConfig,
        data: DataBundle,
        dense: Dense,
        progress: Progress,
        parallel: DataParallel | None = None,
    ):
        self.cfg = cfg
        self.progress = progress
        self.device = resolve_device(cfg.device)
        self.parallel = parallel
        self.data = parallel.shard(data) if parallel else data
        task = make_task(data.info.task)
        self.task: Task = parallel.task(task) if parallel else task
        self.spec: ModelSpec = model_spec(cfg.model)
        self.model_source = model_source(cfg.model)
        self.criterion = make_criterion(cfg.prune.criterion)
        self.dense = dense
        self.dense_params = sum(p.numel() for p in dense.model.parameters())

    def execution(self, settings: FitSettings) -> Execution:
        """How this phase's forward passes run: compiled when `train.compile` says so for its
        planned epochs; through DDP on data-parallel ranks."""
        return Execution(
            compile=should_compile(self.cfg.train.compile, self.device, epoch_bounds(settings)[0]),
            channels_last=self.cfg.train.channels_last,
            distribute=self.parallel.wrap if self.parallel else None,
        )

    def describe_prunable(self) -> dict[str, Any]:
        """What the pruner may prune in the dense model, and what not and why (a run field)."""
        model = self.dense.model
        return make_pruner(self.cfg.prune, model, self.spec, self.data.info).describe(model)

    def fresh_dense(self) -> tuple[nn.Module, Pruner]:
        """A private copy of the dense model (the shared one stays unpruned) and a new pruner."""
        model = build_model(self.cfg.model, self.data.info).to(self.device)
        model.load_state_dict(self.dense.model.state_dict())
        return model, make_pruner(self.cfg.prune, model, self.spec, self.data.info)

    def restore(
        self, tensors: Tensors, meta: dict[str, Any], source: str = "state"
    ) -> tuple[nn.Module, Pruner]:
        """A fresh model and pruner brought to a state made by `state.pack`."""
        cfg = self.cfg
        return restore(
            cfg.model, cfg.prune, self.data.info, tensors, meta, self.device, source=source
        )

    def pack(
        self, model: nn.Module, pruner: Pruner, plan: StepPlan
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The state after `plan`'s step, as a checkpoint holds it; `model_source` names the
        model so that an export rebuilds it in a process where its registration never ran."""
        meta = {"key": plan.key, "parent": plan.parent_key, "model_source": self.model_source}
        return pack(model, pruner, meta)


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
    if ctx.parallel is not None:
        ctx.parallel.agree(model, pruner)  # identical structure, weights and masks on every rank
    pruned_test = task.evaluate(model, data.test, device)
    # What the adaptive rule reads, measured for every regime: step keys do not name the regime,
    # so an adaptive run reuses a fixed regime's step row, which must not depend on which run
    # computed it (one validation pass per step; fine-tuning makes one per epoch).
    pruned_val = task.evaluate(model, data.val, device)
    result = fit(
        model,
        data,
        task,
        plan.settings,
        device,
        masks=pruner.masks,
        on_epoch=lambda record: ctx.progress.epoch_done(plan.index, record),
        execution=ctx.execution(plan.settings),
        teacher=ctx.dense.model if plan.settings.distill is not None else None,
    )
    best_val = result.best_val or task.evaluate(model, data.val, device)
    test = task.evaluate(model, data.test, device, outcomes=True, groups=data.test_groups)
    measured = pruner.measure(model)
    if cfg.prune.structure == "structured" and cfg.prune.latency:
        measured |= latency_pair(
            model, ctx.dense.model, pruner.example_inputs, cfg.prune.latency_batch_size
        )
    row = {
        "run_id": rid,
        "step": plan.index,
        "step_key": plan.key,
        "target": plan.target,
        "increment": plan.increment,
        **measured,
        "compression_ratio": ctx.dense_params / max(measured["params_nonzero"], 1),
        **{f"pruned_test_{k}": v for k, v in pruned_test.items()},
        "pruned_val_loss": pruned_val["loss"],
        "pruned_val_metric": pruned_val[task.metric],
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
