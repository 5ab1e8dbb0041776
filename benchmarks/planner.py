"""Shared-prefix planning vs every run on its own; Ray with 2 workers vs the local executor.

The sweep: the figure-2 preset plus the tables 3-4 hybrid preset (63 rows), seed 0, on the
digits default, shrunk to fit this CPU: a width-8 CNN, batches of 256; the first step of every run retrains at
most FIRST_EPOCHS epochs (patience from the presets: 6 for one-shot and the hybrids' p_k step,
2 for iterative runs), every later step exactly 1 epoch, which keeps the paper's ~20:1 ratio of
first-step to later-step patience (~200 vs ~10 epochs on CIFAR).

Contenders, one pass each (a pass takes minutes; a median of several would take an hour):
  naive          every run computed alone (`runner.run`) in its own results directory that
                 holds only the dense model: nothing is shared;
  planned local  the sweep's plan (each shared step once), in this process;
  one / two processes  the same plan, by one spawned process, then by two on ONE results
                 directory sharing the steps through claims (cooperating sweeps), twice,
                 interleaved (medians); start-up included; each process in its own session, as a sweep started from its own
                 shell is (Linux's autogroup scheduler shares the CPU per session: two
                 processes of one session on a busy machine get one session's share);
  planned ray    the same plan on a local Ray instance with 2 workers (start-up included).
All use one torch thread per process (the 2 Ray workers use one each). Every run's rows must be
identical across all of them (apart from timing and provenance columns): checked.
ratio = planned fine-tuning epochs / naive fine-tuning epochs (goal <= 0.6).

Run: python benchmarks/planner.py
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent / "support"))
from common import median, report

from prunebench.config.sweep_grid import load_sweep
from prunebench.engine.dense_models import dense_model
from prunebench.engine.driver import execute_plan
from prunebench.engine.executors.local import LocalExecutor
from prunebench.engine.executors.ray import RayExecutor
from prunebench.engine.plan import build_plan, count
from prunebench.engine.single_run import run
from prunebench.store.database import Store

SWEEPS = Path(__file__).parents[1] / "configs" / "sweeps"
PRESETS = ["fig2_regimes.yaml", "tables_3_4_hybrid.yaml"]
FIRST_EPOCHS = 20
PROCESS_REPEATS = 2  # one process / two processes, interleaved; medians
SHRINK = [
    "seed=0",
    "device=cpu",
    "model.options={width: 8}",
    "data.batch_size=256",
    "pretrain.epochs=20",
    "pretrain.patience=3",
    f"finetune.first_max_epochs={FIRST_EPOCHS}",
    "finetune.max_epochs=1",
]
DROP = {"seconds", "created_at", "reused", "run_id"}


def configs():
    out = []
    for preset in PRESETS:
        out += load_sweep(SWEEPS / preset, SHRINK)[1]
    return out


def measured(store: Store, rid: str) -> tuple[list[dict], list[list[dict]]]:
    rows = store.steps(rid)
    epochs = [store.epochs(rid, r["step"]) for r in rows]
    strip = lambda row, drop: {k: v for k, v in row.items() if k not in drop}  # noqa: E731
    return [strip(r, DROP) for r in rows], [[strip(e, DROP) for e in es] for es in epochs]


def with_dense(dense: Path, root: Path) -> Store:
    shutil.copytree(dense, root / "dense")
    return Store(root)


def cooperate(cfgs, root: str, computed) -> None:
    """One of the processes: the whole plan on the shared directory."""
    os.setsid()  # its own session (and autogroup), like a sweep started from its own shell
    torch.set_num_threads(1)
    outcome = execute_plan(build_plan(cfgs), Store(root), LocalExecutor())
    assert not outcome.failed, outcome.failed
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = used.ru_utime + used.ru_stime  # start-up included
    computed.put((outcome.computed, outcome.by_others, outcome.waited, cpu))


def processes(n: int, cfgs, root: Path) -> tuple[float, list[tuple[int, int, float, float]]]:
    """Wall seconds of `n` spawned processes running the plan on `root`, and the steps each
    computed / took from the others / the seconds it waited idle for them / its CPU seconds."""
    spawn = multiprocessing.get_context("spawn")
    computed = spawn.Queue()
    procs = [spawn.Process(target=cooperate, args=(cfgs, str(root), computed)) for _ in range(n)]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    seconds = time.perf_counter() - start
    assert all(proc.exitcode == 0 for proc in procs), [proc.exitcode for proc in procs]
    return seconds, [computed.get() for _ in procs]


def main() -> None:
    torch.set_num_threads(1)
    cfgs = configs()
    plan = build_plan(cfgs)
    bounds = count(plan)
    print(f"{len(plan.runs)} runs; steps naive {plan.naive_steps}, planned {plan.planned_steps}")
    load_before = os.getloadavg()[0]  # the machine is shared: its load is part of the record
    work = Path(tempfile.mkdtemp(prefix="planner-bench-"))
    try:
        seed_store = Store(work / "pretrain")
        dense_model(cfgs[0], seed_store)  # pretrains the dense model (not timed)
        dense = seed_store.root / "dense"

        timings: dict[str, float] = {}
        local = with_dense(dense, work / "local")
        start = time.perf_counter()
        outcome = execute_plan(plan, local, LocalExecutor())
        timings["planned_local_s"] = time.perf_counter() - start
        assert len(outcome.done) == len(plan.runs), outcome.failed
        print(f"planned local: {timings['planned_local_s']:.1f}s")

        passes: dict[str, list[float]] = {"one": [], "two": []}
        cpu: dict[str, list[float]] = {"one": [], "two": []}  # CPU seconds, all processes
        for rep in range(PROCESS_REPEATS):  # interleaved: the machine's load hits both alike
            alone = with_dense(dense, work / f"one{rep}")
            seconds, single = processes(1, cfgs, alone.root)
            passes["one"].append(seconds)
            cpu["one"].append(single[0][3])
            shared = with_dense(dense, work / f"two{rep}")
            seconds, split = processes(2, cfgs, shared.root)
            passes["two"].append(seconds)
            cpu["two"].append(sum(c for *_, c in split))
            print(f"one process: {passes['one'][-1]:.1f}s; two on one directory: {seconds:.1f}s")
        timings["one_process_s"] = median(passes["one"])
        timings["two_processes_s"] = median(passes["two"])

        start = time.perf_counter()
        naive_epochs = naive_steps = 0
        naive_rows = {}
        for i, run_plan in enumerate(plan.runs):
            store = with_dense(dense, work / "naive" / str(i))
            result = run(run_plan.cfg, store)
            assert result.computed == len(run_plan.steps) and result.reused == 0
            naive_steps += result.computed
            naive_epochs += sum(r["epochs"] for r in result.rows)
            naive_rows[run_plan.run_id] = measured(store, result.run_id)
        timings["naive_s"] = time.perf_counter() - start
        print(f"naive: {timings['naive_s']:.1f}s")

        ray_store = with_dense(dense, work / "ray")
        executor = RayExecutor(workers=2, threads=1)
        start = time.perf_counter()
        executor.start()
        timings["ray_start_s"] = time.perf_counter() - start
        ray_outcome = execute_plan(plan, ray_store, executor)
        timings["planned_ray_s"] = time.perf_counter() - start
        assert len(ray_outcome.done) == len(plan.runs), ray_outcome.failed
        print(f"planned ray (2 workers): {timings['planned_ray_s']:.1f}s")

        steps = local.frame("steps")
        planned_epochs = int(steps.loc[steps["reused"] == 0, "epochs"].sum())
        planned_steps = int((steps["reused"] == 0).sum())
        identical_naive = all(measured(local, r.run_id) == naive_rows[r.run_id] for r in plan.runs)
        identical_ray = all(
            measured(local, r.run_id) == measured(ray_store, r.run_id) for r in plan.runs
        )
        identical_two = all(
            measured(local, r.run_id) == measured(shared, r.run_id)
            and measured(local, r.run_id) == measured(alone, r.run_id)
            for r in plan.runs
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratio = planned_epochs / naive_epochs
    print()
    print(f"{'':24}{'naive':>10}{'planned':>10}{'ratio':>8}")
    print(f"{'fine-tuning epochs':24}{naive_epochs:>10}{planned_epochs:>10}{ratio:>8.3f}")
    print(
        f"{'fine-tuning steps':24}{naive_steps:>10}{planned_steps:>10}"
        f"{planned_steps / naive_steps:>8.3f}"
    )
    print(
        f"{'wall seconds (local)':24}{timings['naive_s']:>10.1f}{timings['planned_local_s']:>10.1f}"
        f"{timings['planned_local_s'] / timings['naive_s']:>8.3f}"
    )
    print(
        f"ray 2 workers: {timings['planned_ray_s']:.1f}s (start-up {timings['ray_start_s']:.1f}s)"
        f" vs local {timings['planned_local_s']:.1f}s: "
        f"{timings['planned_ray_s'] / timings['planned_local_s']:.3f}"
    )
    print(
        f"two processes on one directory: {timings['two_processes_s']:.1f}s vs one "
        f"{timings['one_process_s']:.1f}s: "
        f"{timings['two_processes_s'] / timings['one_process_s']:.3f} (steps computed per "
        f"process: {', '.join(str(c) for c, *_ in split)}; CPU seconds of both "
        f"{median(cpu['two']):.1f} vs one {median(cpu['one']):.1f})"
    )
    print(
        f"identical rows: naive vs planned {identical_naive}, ray vs local {identical_ray}, "
        f"two processes vs one {identical_two}"
    )
    report(
        "planner",
        ratio,
        0.6,
        "lower",
        "planned / naive fine-tuning epochs",
        {
            "sweep": " + ".join(PRESETS) + " (seed 0)",
            "overrides": SHRINK,
            "runs": len(plan.runs),
            "naive_steps": naive_steps,
            "planned_steps": planned_steps,
            "steps_ratio": planned_steps / naive_steps,
            "naive_epochs": naive_epochs,
            "planned_epochs": planned_epochs,
            "epochs_bounds_before_running": {
                "naive": list(bounds.naive_epochs),
                "planned": list(bounds.planned_epochs),
            },
            **timings,
            "wall_ratio_planned_vs_naive": timings["planned_local_s"] / timings["naive_s"],
            "wall_ratio_ray2_vs_local": timings["planned_ray_s"] / timings["planned_local_s"],
            "wall_ratio_two_processes_vs_one": timings["two_processes_s"]
            / timings["one_process_s"],
            "one_process_passes_s": passes["one"],
            "two_processes_passes_s": passes["two"],
            "two_processes_steps_computed": [c for c, *_ in split],
            "two_processes_steps_taken_from_the_other": [o for _, o, *_ in split],
            "two_processes_seconds_idle_waiting": [w for _, _, w, _ in split],
            "one_process_cpu_s": cpu["one"],
            "two_processes_cpu_s_both": cpu["two"],
            "two_processes_cpu_share_of_last_pass": [
                c / sum(x for *_, x in split) for *_, c in split
            ],
            "identical_rows_naive_vs_planned": identical_naive,
            "identical_rows_ray_vs_local": identical_ray,
            "identical_rows_two_processes_vs_one": identical_two,
            "load_average_1min_before_after": [load_before, os.getloadavg()[0]],
            "repeats": 1,
            "torch_threads_per_process": 1,
        },
    )
    if not (identical_naive and identical_ray and identical_two):
        sys.exit("results differ between contenders")


if __name__ == "__main__":
    main()
