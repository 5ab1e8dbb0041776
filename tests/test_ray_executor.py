"""The Ray executor on a local instance with 2 workers: the same rows as the local executor."""

from __future__ import annotations

import shutil

import pytest
import torch

from prunebench.driver import execute_plan
from prunebench.plan import build_plan
from prunebench.store import Store
from prunebench.sweep import load_sweep
from sweep_helpers import run_sweep, table, write_sweep

pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_with_two_workers_writes_the_rows_of_the_local_executor(tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep.yaml",
        cases=[
            {"regime": {"name": "one_shot"}},
            {"regime": {"name": "geometric", "rate": 0.4}},
            {"regime": {"name": "hybrid", "first": 0.5, "rate": 0.3}},
            {
                "name": "diverges",
                "regime": {"name": "geometric", "rate": 0.4},
                "finetune.optimizer.lr": 1e10,
            },
        ],
        grid={"regime.target": [0.7, 0.9]},
    )
    ray_dir, local_dir = tmp_path / "ray", tmp_path / "local"
    proc = run_sweep(str(sweep), "--results", str(ray_dir), "--executor", "ray", "--workers", "2")
    assert proc.returncode == 1, proc.stderr  # the diverging runs fail; the others finish
    assert "6 done now, 2 failed" in proc.stdout

    plan = build_plan(load_sweep(sweep)[1])
    shutil.copytree(ray_dir / "dense", local_dir / "dense")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcome = execute_plan(plan, Store(local_dir))
    finally:
        torch.set_num_threads(threads)
    assert len(outcome.done) == 6 and len(outcome.failed) == 2

    drop = {"seconds", "created_at"}
    assert table(ray_dir, "steps", drop) == table(local_dir, "steps", drop)
    assert table(ray_dir, "epochs", {"seconds"}) == table(local_dir, "epochs", {"seconds"})
    run_drop = {"started_at", "finished_at", "device"}
    assert table(ray_dir, "runs", run_drop) == table(local_dir, "runs", run_drop)
    steps = table(ray_dir, "steps", drop)
    good = [r for r in plan.runs if r.label != "diverges"]
    assert len(steps) == sum(len(r.steps) for r in good)  # no row lost or duplicated
    assert sum(1 - r["reused"] for r in steps) == len({s.key for r in good for s in r.steps})
