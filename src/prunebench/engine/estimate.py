"""How long a plan will take, before it runs: a few timed batches of each distinct model and data
on the device the runs will use, times the epochs the plan has left.

An epoch costs its training batches plus one validation pass; a step adds two test passes
(right after pruning and at the end); a dense model that is not stored yet costs its pretraining
epochs; a distilling step's epoch adds the teacher's forward pass per training batch. Epoch counts come from the plan (`settings.epoch_bounds`: exact for fixed-length
fine-tuning, fewest-most with patience), so every figure is a range. Models are timed dense:
structured steps shrink them, so their steps run faster than estimated. `side_by_side` schedules
the plan's steps on k slots (Ray workers, GPU shares) in the driver's critical-path order, each
step as fast as alone: a lower bound where slots share a device.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import torch

from prunebench.accel import autocast
from prunebench.config.fit_settings import epoch_bounds
from prunebench.config.identity import canonical_json, data_identity
from prunebench.config.schema import RunConfig
from prunebench.data.base import Batch, DataBundle, to_device
from prunebench.devices import resolve_device
from prunebench.engine.plan import Plan
from prunebench.engine.pretrain import pretrain_settings
from prunebench.engine.training import make_optimizer, train_epoch
from prunebench.models.build import build_model
from prunebench.tasks import make_task

TIMED_BATCHES = 3  # per kind, after one warm-up batch (cuDNN autotuning, allocator growth)
Bounds = tuple[float, float]  # fewest, most seconds


@dataclass(frozen=True)
class EpochTime:
    """Measured seconds per batch of one model on one data set and device, and batch counts."""

    label: str
    device: str
    train_batch: float
    eval_batch: float
    train_batches: int
    val_batches: int
    test_batches: int
    teacher_batch: float = 0.0  # the dense teacher's forward pass on a training batch

    @property
    def val(self) -> float:
        return self.eval_batch * self.val_batches

    @property
    def epoch(self) -> float:
        """One training epoch and its validation pass."""
        return self.train_batch * self.train_batches + self.val

    @property
    def distilled_epoch(self) -> float:
        """An epoch of distillation: each training batch also runs the teacher forward."""
        return self.epoch + self.teacher_batch * self.train_batches

    @property
    def test(self) -> float:
        return self.eval_batch * self.test_batches


def timing_key(cfg: RunConfig) -> str:
    """What an epoch's time depends on: the data (with its batch sizes), model and device."""
    return canonical_json(
        [
            data_identity(cfg),
            cfg.data.eval_batch_size,
            cfg.model.model_dump(mode="json"),
            cfg.device,
        ]
    )


def _counted(batches: Iterable[Batch], n: int, seen: list[int]) -> Iterator[Batch]:
    for batch in islice(batches, n):
        seen[0] += 1
        yield batch


def _seconds_per_batch(call: Callable[[Iterator[Batch]], object], batches, device) -> float:
    seen = [0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    call(_counted(batches, TIMED_BATCHES, seen))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / max(seen[0], 1)


def measure(cfg: RunConfig, data: DataBundle) -> EpochTime:
    """Time a few training and evaluation batches of a freshly built model (the RNG is left
    as it was: timing never changes what runs after it)."""
    device = resolve_device(cfg.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = build_model(cfg.model, data.info).to(device)
        task = make_task(data.info.task)
        opt = cfg.finetune.optimizer
        optimizer = make_optimizer(
            model.parameters(), opt.name, opt.lr or 1e-3, opt.momentum, opt.weight_decay
        )

        def train(batches):
            return train_epoch(model, batches, task, optimizer, device)

        def evaluate(batches):
            return task.evaluate(model, batches, device)

        def teach(batches):
            model.eval()
            with torch.no_grad(), autocast(device):
                for batch in batches:
                    task.forward(model, to_device(batch, device)[0])

        train(islice(data.train, 1))  # warm-up
        evaluate(islice(data.val, 1))
        train_s = _seconds_per_batch(train, data.train, device)
        eval_s = _seconds_per_batch(evaluate, data.val, device)
        teacher_s = _seconds_per_batch(teach, data.train, device)
    sizes = data.sizes
    return EpochTime(
        label=f"{cfg.model.name} on {cfg.data.name}",
        device=str(device),
        train_batch=train_s,
        eval_batch=eval_s,
        train_batches=math.ceil(sizes.get("train", 0) / cfg.data.batch_size),
        val_batches=math.ceil(sizes.get("val", 0) / cfg.data.eval_batch_size),
        test_batches=math.ceil(sizes.get("test", 0) / cfg.data.eval_batch_size),
        teacher_batch=teacher_s,
    )


@dataclass
class Estimate:
    """Seconds the plan has left: pretraining (one after another, as the driver does it) and
    the steps (`durations`, fewest / most, with their parents for scheduling)."""

    times: dict[str, EpochTime]
    pretrain: Bounds
    durations: dict[str, Bounds]
    parents: dict[str, str | None]
    priority: dict[str, int] = field(default_factory=dict)

    def side_by_side(self, slots: int, with_pretraining: bool = True) -> Bounds:
        """Wall seconds with `slots` steps computed at a time (1: the local executor)."""
        fewest = _schedule(self, slots, 0) + (self.pretrain[0] if with_pretraining else 0.0)
        most = _schedule(self, slots, 1) + (self.pretrain[1] if with_pretraining else 0.0)
        return fewest, most


def _schedule(est: Estimate, slots: int, which: int) -> float:
    """List scheduling: a step starts when its parent is done and a slot is free, longest chain
    first (the driver's order)."""
    children: dict[str | None, list[str]] = {}
    for key, parent in est.parents.items():
        children.setdefault(parent if parent in est.parents else None, []).append(key)
    ready = [(-est.priority.get(k, 0), k) for k in children.get(None, [])]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < slots:
            _, key = heapq.heappop(ready)
            heapq.heappush(running, (now + est.durations[key][which], key))
        now, key = heapq.heappop(running)
        for child in children.get(key, []):
            heapq.heappush(ready, (-est.priority.get(child, 0), child))
    return now


def estimate(
    plan: Plan,
    keys: Iterable[str],
    data_for: Callable[[RunConfig], DataBundle],
    pretrain: Iterable[RunConfig] = (),
) -> Estimate:
    """Time each distinct model / data once and add up what `keys` (the steps left) and the
    dense models in `pretrain` (those not stored yet) cost."""
    keys = list(keys)
    times: dict[str, EpochTime] = {}

    def time_of(cfg: RunConfig) -> EpochTime:
        key = timing_key(cfg)
        if key not in times:
            times[key] = measure(cfg, data_for(cfg))
        return times[key]

    durations: dict[str, Bounds] = {}
    for key in keys:
        node = plan.nodes[key]
        t = time_of(plan.run(node.runs[0]).cfg)
        settings = node.step.settings
        per_epoch = t.distilled_epoch if settings.distill is not None else t.epoch
        lo, hi = epoch_bounds(settings)
        durations[key] = (lo * per_epoch + 2 * t.test, hi * per_epoch + 2 * t.test)
    pre = [0.0, 0.0]
    for cfg in pretrain:
        t = time_of(cfg)
        bounds = epoch_bounds(pretrain_settings(cfg.pretrain))
        for i in (0, 1):
            pre[i] += bounds[i] * t.epoch + t.val + t.test  # then evaluated on val and test
    critical = plan.critical_path()
    return Estimate(
        times={t.label + f" ({t.device})": t for t in times.values()},
        pretrain=(pre[0], pre[1]),
        durations=durations,
        parents={k: plan.nodes[k].step.parent_key for k in keys},
        priority={k: critical[k] for k in keys},
    )


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def span(bounds: Bounds) -> str:
    lo, hi = (duration(b) for b in bounds)
    return lo if lo == hi else f"{lo}-{hi}"


def render(est: Estimate, slots: Iterable[int]) -> list[str]:
    """The dry run's lines: the measured epoch times, then the plan's wall time per slot count."""
    lines = [
        f"time per epoch, measured on {TIMED_BATCHES} training and {TIMED_BATCHES} evaluation "
        "batches of each dense model (pruned structured models run faster):"
    ]
    for label, t in est.times.items():
        lines.append(
            f"  {label}: {t.epoch:.3g} s per epoch (train {1e3 * t.train_batch:.3g} ms x "
            f"{t.train_batches} batches, evaluation {1e3 * t.eval_batch:.3g} ms x "
            f"{t.val_batches}), tests {t.test:.3g} s"
        )
    pre = f"; pretraining {span(est.pretrain)} of it" if est.pretrain[1] else ""
    lines.append(f"estimated wall time (planned epochs x epoch time{pre}):")
    for k in sorted(set(slots)):
        what = "1 step at a time (local executor)" if k == 1 else f"{k} steps side by side"
        lines.append(f"  {what}: {span(est.side_by_side(k))}")
    return lines
