"""What prunebench's fine-tuning machinery costs over a hand-written PyTorch loop.

(a) prunebench: `fit` with masks, validation every epoch, best-checkpoint copies, a database
    write of the step and its epochs, and the live progress display;
(b) a minimal loop doing the same arithmetic (same batches, masks, optimizer, validation).
Both must produce the same validation losses epoch by epoch (checked). Each pair runs back to
back in alternating order; ratio = the median over pairs of (a) / (b) in CPU time of this
process (one torch thread: on a quiet machine CPU time is the wall time; on a shared one it
leaves out the time other processes held the core, which swings wall-time pairs by ±40 %). The
wall-time figures (median of pair ratios, ratio of medians) are in the details. Details also time one training
step dense, with our masks and with torch.nn.utils.prune. With `--log mlflow` (or tensorboard),
(a) with the step and its epochs logged through the driver's tracking hub to a local store (what
`--log mlflow` does; the hub started once, as in a sweep) is paired with (b) too; the details
hold that ratio and the tracking thread's CPU per step.

Run: python benchmarks/overhead.py [--log mlflow]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from rich.console import Console
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune as torch_prune

sys.path.insert(0, str(Path(__file__).parent / "support"))
from common import interleaved, median, paired, paired_ratio, report

from prunebench.config.fit_settings import FitSettings
from prunebench.config.loading import load_run_config
from prunebench.config.schema import PruneConfig
from prunebench.criteria import make_criterion
from prunebench.data import DATASETS
from prunebench.engine.finetune import fit
from prunebench.models.build import build_model
from prunebench.progress import RichProgress
from prunebench.pruning.params import select_prunable
from prunebench.pruning.unstructured import UnstructuredPruner
from prunebench.store.database import Store
from prunebench.tasks import Classification
from prunebench.tracking.base import RunInfo, Session, StepRecord
from prunebench.tracking.hub import Tracking, make_tracking
from prunebench.tracking.spec import parse_log

EPOCHS = 8
REPEATS = 9
SPARSITY = 0.9
LR, MOMENTUM, WD = 0.01, 0.9, 5e-4
DEVICE = torch.device("cpu")


def setup():
    cfg = load_run_config(None, ["device=cpu", "model.options={width: 32}"])
    data = DATASETS.get("digits").build(cfg.data, DEVICE)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.info)
    pruner = UnstructuredPruner(
        model, select_prunable(model, PruneConfig()), make_criterion("magnitude")
    )
    pruner.prune_to(model, SPARSITY)
    return data, model, pruner


def prunebench_finetune(data, start_state, root: Path, tracking: Tracking | None = None):
    """(a): the real machinery, including the database write and the live display (and, with
    `tracking`, the step handed to the tracking thread, as the driver does)."""
    model = build_model(load_run_config(None, ["model.options={width: 32}"]).model, data.info)
    model.load_state_dict(start_state)
    pruner = UnstructuredPruner(
        model, select_prunable(model, PruneConfig()), make_criterion("magnitude")
    )
    pruner.masks.set({n: start_state[n] != 0 for n in pruner.masks.names})
    progress = RichProgress(Console(file=io.StringIO(), force_terminal=True, width=150))
    progress.run_started("bench", "overhead", 1)
    progress.step_started(1, SPARSITY)
    settings = FitSettings("sgd", LR, MOMENTUM, WD, max_epochs=EPOCHS, patience=EPOCHS + 1)
    torch.manual_seed(1)
    result = fit(
        model,
        data,
        Classification(),
        settings,
        DEVICE,
        masks=pruner.masks,
        on_epoch=lambda rec: progress.epoch_done(1, rec),
    )
    store = Store(root)
    store.start_run("bench", {"regime": "one_shot"})
    row = {"run_id": "bench", "step": 1, "step_key": "bench", **pruner.measure(model)}
    epochs = [asdict(r) for r in result.history]
    store.write_steps([(row, epochs)])
    if tracking is not None:
        full = {**row, "epochs": len(epochs), "cumulative_epochs": len(epochs), "target": SPARSITY}
        tracking.steps([StepRecord(root.name, full, epochs)])
        tracking.run_finished(root.name, "done")
    progress.step_done({"test_top1": result.best_val["top1"]})
    progress.run_finished("bench", "done")
    return [r.val_loss for r in result.history]


def hand_written(data, start_state):
    """(b): the same arithmetic written out by hand."""
    model = build_model(load_run_config(None, ["model.options={width: 32}"]).model, data.info)
    model.load_state_dict(start_state)
    model.to(memory_format=torch.channels_last)  # as prunebench runs convnets (accel.py)
    names = [n for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    params = dict(model.named_parameters())
    masked = [params[n] for n in names]
    factors = [(start_state[n] != 0).float() for n in names]
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    torch.manual_seed(1)
    val_losses = []
    for _ in range(EPOCHS):
        model.train()
        for x, y in data.train:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
            loss.backward()
            torch._foreach_mul_([p.grad for p in masked], factors)
            optimizer.step()
            with torch.no_grad():
                torch._foreach_mul_(masked, factors)
        model.eval()
        total, count = 0.0, 0
        with torch.inference_mode():
            for x, y in data.val:
                x = x.contiguous(memory_format=torch.channels_last)
                total += float(F.cross_entropy(model(x), y, reduction="sum"))
                count += len(y)
        val_losses.append(total / count)
    return val_losses


def one_step_timings(data, start_state, steps: int = 40) -> dict[str, float]:
    """Median seconds of one training step: dense, our masks, torch.nn.utils.prune."""
    batch = next(iter(data.train))
    cfg = load_run_config(None, ["model.options={width: 32}"])

    def fresh():
        model = build_model(cfg.model, data.info)
        model.load_state_dict(start_state)
        return model

    dense = fresh()
    ours = fresh()
    pruner = UnstructuredPruner(
        ours, select_prunable(ours, PruneConfig()), make_criterion("magnitude")
    )
    pruner.masks.set({n: start_state[n] != 0 for n in pruner.masks.names})
    hooked = fresh()
    for module in hooked.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            torch_prune.l1_unstructured(module, "weight", amount=SPARSITY)

    def stepper(model, masks=None):
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)

        def step():
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(batch[0]), batch[1]).backward()
            if masks is not None:
                masks.mask_grads()
            optimizer.step()
            if masks is not None:
                masks.apply()

        return step

    steps_by_name = {
        "dense": stepper(dense),
        "prunebench_masks": stepper(ours, pruner.masks),
        "torch_nn_utils_prune": stepper(hooked),
    }
    for step in steps_by_name.values():  # warm-up
        step()
    times = interleaved(steps_by_name, steps)
    return {name: median(values) for name, values in times.items()}


class NoRows:
    def steps(self, run_id):
        return []

    def epochs(self, run_id, step):
        return []


def start_tracking(log: str, tmp: Path) -> Tracking:
    """The hub as the driver starts it for a sweep: every run known up front."""
    tracking = make_tracking([parse_log(log)], lambda backend: tmp / "log" / backend)
    config = load_run_config(None, ["model.options={width: 32}"]).model_dump(mode="json")
    runs = [
        RunInfo(f"log{i}", f"overhead {i}", config, {"regime": "one_shot", "seed": 0})
        for i in range(REPEATS + 1)
    ]
    tracking.start(Session(str(tmp)), runs, NoRows())
    return tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="also time (a) logging to mlflow or tensorboard")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data, model, _ = setup()
    start_state = {k: v.clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))
        check = {}

        def run_a():
            check["a"] = prunebench_finetune(data, start_state, Path(tmp) / str(next(counter)))

        def run_b():
            check["b"] = hand_written(data, start_state)

        run_a(), run_b()  # warm-up (imports, allocator)
        times, cpu = paired({"prunebench": run_a, "hand_written": run_b}, REPEATS)
        extra = {}
        if args.log:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            tracking = start_tracking(args.log, Path(tmp))
            logged = iter(range(1000))

            def run_logged():
                root = Path(tmp) / f"log{next(logged)}"
                check["logged"] = prunebench_finetune(data, start_state, root, tracking)

            run_logged()
            log_times, log_cpu = paired({"logged": run_logged, "hand_written": run_b}, REPEATS)
            warnings = tracking.close()
            if warnings:
                raise SystemExit(f"tracking failed: {warnings}")
            per_step = tracking.cpu_seconds.get("steps", 0.0) / (REPEATS + 1)
            extra = {
                "log": args.log,
                "cpu_ratio_with_log": paired_ratio(log_cpu["logged"], log_cpu["hand_written"]),
                "wall_ratio_with_log": paired_ratio(log_times["logged"], log_times["hand_written"]),
                "tracking_thread_cpu_ms_per_step": per_step * 1e3,
                "tracking_thread_cpu_ms_open": tracking.cpu_seconds.get("open", 0.0) * 1e3,
            }
            print(
                f"with --log {args.log}: CPU ratio {extra['cpu_ratio_with_log']:.3f}, "
                f"tracking thread {per_step * 1e3:.1f} ms CPU per step"
            )
    if check["a"] != check["b"] or check.get("logged", check["a"]) != check["a"]:
        raise SystemExit(f"the loops disagree: {check}")
    a, b = median(times["prunebench"]), median(times["hand_written"])
    ratio = paired_ratio(cpu["prunebench"], cpu["hand_written"])
    steps = one_step_timings(data, start_state)
    print(f"{'contender':<24}{'median s':>10}")
    print(f"{'prunebench fit':<24}{a:>10.3f}   CPU {median(cpu['prunebench']):.3f}")
    print(f"{'hand-written loop':<24}{b:>10.3f}   CPU {median(cpu['hand_written']):.3f}")
    for name, value in steps.items():
        print(f"{'one step ' + name:<34}{value * 1e3:>8.2f} ms")
    report(
        "overhead",
        ratio=ratio,
        goal=1.05,
        better="lower",
        unit="median per-pair CPU-time ratio (prunebench fit / hand-written loop), 1 thread",
        details={
            "epochs": EPOCHS,
            "repeats": REPEATS,
            "sparsity": SPARSITY,
            "model": "digits_cnn width 32",
            "dataset": "digits (train 1293, val 144)",
            "prunebench_s": times["prunebench"],
            "hand_written_s": times["hand_written"],
            "prunebench_cpu_s": cpu["prunebench"],
            "hand_written_cpu_s": cpu["hand_written"],
            "cpu_pair_ratios": [x / y for x, y in zip(*cpu.values(), strict=True)],
            "wall_paired_ratio": paired_ratio(times["prunebench"], times["hand_written"]),
            "wall_ratio_of_medians": a / b,
            "wall_pair_ratios": [x / y for x, y in zip(*times.values(), strict=True)],
            "load_average": os.getloadavg(),
            "identical_val_losses": True,
            "one_step_ms": {k: v * 1e3 for k, v in steps.items()},
            "masks_vs_dense_step": steps["prunebench_masks"] / steps["dense"],
            "torch_prune_vs_dense_step": steps["torch_nn_utils_prune"] / steps["dense"],
            **extra,
        },
    )


if __name__ == "__main__":
    main()
