"""The Ray executor on a local instance with 2 workers: the same rows as the local executor."""

from __future__ import annotations

import pytest

from sweep_helpers import assert_same_tables, compute_locally, run_sweep, table, write_sweep

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

    plan, outcome = compute_locally(sweep, ray_dir, local_dir)
    assert len(outcome.done) == 6 and len(outcome.failed) == 2
    assert_same_tables(ray_dir, local_dir)
    drop = {"seconds", "created_at"}
    steps = table(ray_dir, "steps", drop)
    good = [r for r in plan.runs if r.label != "diverges"]
    assert len(steps) == sum(len(r.steps) for r in good)  # no row lost or duplicated
    assert sum(1 - r["reused"] for r in steps) == len({s.key for r in good for s in r.steps})
