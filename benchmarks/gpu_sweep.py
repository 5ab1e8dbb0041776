"""Steps per hour of the figure-2 sweep (ResNet-18, CIFAR-10-shaped synthetic data): the local
executor (one step at a time) vs Ray workers computing ready steps side by side.

The sweep: figure 2's regimes (one-shot, constant step 0.1, geometric rate 0.2; unstructured
global magnitude) to targets 0.7 and 0.9, seed 0, one fine-tuning epoch per step (a few steps
per run; the plan shares the iterative runs' common prefixes). The dense model is pretrained
once, outside the timing, and copied into every results directory. Ray's instance is started
once; each sweep creates its workers (their start-up is timed: a sweep pays it).

On a GPU: 50k images, width 64, batch 512, Ray workers with a quarter of the GPU each (four
steps share it: `--gpus-per-step 0.25`). Without a GPU: a small CPU version (400 images, width
4) with 2 CPU workers, which says that the GPU figure is not measured; on this 2-core machine
two workers have little room to overlap. ratio = Ray steps/hour / local steps/hour
(goal >= 2 on a GPU). Contenders alternate (local, Ray, local, Ray): medians of REPS each. On
the CPU the rows of both executors must be identical (checked).

    python benchmarks/gpu_sweep.py
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent / "support"))
from common import report
from synthetic import write_cifar10

from prunebench.config.loading import load_run_config
from prunebench.engine.dense_models import dense_model
from prunebench.engine.driver import execute_plan
from prunebench.engine.executors.local import LocalExecutor
from prunebench.engine.executors.ray import RayExecutor
from prunebench.engine.plan import build_plan
from prunebench.store.database import Store

NAME = "gpu_sweep"
GOAL = 2.0
CUDA = torch.cuda.is_available()
if CUDA:
    N_IMAGES, WIDTH, BATCH, GPUS_PER_STEP, WORKERS, REPS = 50_000, 64, 512, 0.25, None, 2
else:
    N_IMAGES, WIDTH, BATCH, GPUS_PER_STEP, WORKERS, REPS = 400, 4, 100, 0.0, 2, 2
CASES = [
    ["regime.name=one_shot"],
    ["regime.name=constant", "regime.step=0.1"],
    ["regime.name=geometric", "regime.rate=0.2"],
]
TARGETS = [0.7, 0.9]
TIMING = {"seconds", "created_at"}


def configs(root: Path):
    base = [
        f"device={'cuda' if CUDA else 'cpu'}",
        "seed=0",
        "data.name=cifar10",
        f"data.root={root}",
        f"data.batch_size={BATCH}",
        "data.eval_batch_size=1024",
        "model.name=resnet18_cifar",
        f"model.options={{width: {WIDTH}}}",
        "pretrain.epochs=1",
        "finetune.mode=fixed",
        "finetune.epochs=1",
    ]
    return [
        load_run_config(None, [*base, *case, f"regime.target={t}"])
        for case in CASES
        for t in TARGETS
    ]


def rows(store: Store) -> list[dict]:
    frame = store.frame("steps").drop(columns=sorted(TIMING)).sort_values(["run_id", "step"])
    return frame.to_dict("records")


def main() -> None:
    import ray

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="gpu-sweep-"))
    cfgs = configs(write_cifar10(work / "cifar", N_IMAGES, 100))
    plan = build_plan(cfgs)
    dense = Store(work / "dense")
    dense_model(cfgs[0], dense)  # pretrained once, not timed
    ray.init(num_cpus=WORKERS or None, include_dashboard=False, log_to_driver=False)
    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    stored: dict[str, Store] = {}
    try:
        for rep in range(REPS):
            for name in seconds:  # interleaved: local, ray, local, ray
                store = Store(work / f"{name}{rep}")
                shutil.copytree(dense.root / "dense", store.root / "dense")
                executor = (
                    LocalExecutor()
                    if name == "local"
                    else RayExecutor(workers=WORKERS, threads=1, gpus_per_step=GPUS_PER_STEP)
                )
                start = time.perf_counter()
                outcome = execute_plan(plan, store, executor)
                seconds[name].append(time.perf_counter() - start)
                assert len(outcome.done) == len(plan.runs), outcome.failed
                stored[name] = store
                print(f"{name}: {seconds[name][-1]:.1f}s ({outcome.computed} steps)")
        identical = None if CUDA else rows(stored["local"]) == rows(stored["ray"])
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    steps = plan.planned_steps
    per_hour = {k: 3600 * steps / statistics.median(v) for k, v in seconds.items()}
    ratio = per_hour["ray"] / per_hour["local"]
    device = torch.cuda.get_device_name(0) if CUDA else "cpu"
    workers = f"{GPUS_PER_STEP:g} GPU each" if CUDA else f"{WORKERS} CPU workers"
    print(
        f"device: {device}; {len(plan.runs)} runs, {steps} planned steps (naive {plan.naive_steps})"
    )
    print(f"{'executor':<28}{'median s':>10}{'steps/hour':>12}")
    for name, values in seconds.items():
        label = "local (one at a time)" if name == "local" else f"ray ({workers})"
        print(f"{label:<28}{statistics.median(values):>10.1f}{per_hour[name]:>12.0f}")
    if not CUDA:
        print("no GPU here: this is the small CPU version; the GPU figure is not measured")
        print(f"rows identical (ray vs local): {identical}")
    report(
        NAME,
        ratio,
        GOAL,
        "higher",
        "steps per hour, Ray workers side by side / local executor",
        {
            "device": "cuda" if CUDA else "cpu",
            "device_name": device,
            "gpu_figure": "measured" if CUDA else "not measured on a GPU",
            "steps_per_hour": per_hour,
            "seconds_all": seconds,
            "planned_steps": steps,
            "naive_steps": plan.naive_steps,
            "runs": len(plan.runs),
            "ray_workers": WORKERS or f"one per {GPUS_PER_STEP:g} GPU",
            "gpus_per_step": GPUS_PER_STEP,
            "images": N_IMAGES,
            "model": f"resnet18_cifar width {WIDTH}",
            "batch_size": BATCH,
            "fine_tuning": "1 epoch per step (fixed)",
            "repetitions": REPS,
            "rows_identical_ray_vs_local": identical,
        },
    )
    if identical is False:
        sys.exit("rows differ between executors")


if __name__ == "__main__":
    main()
