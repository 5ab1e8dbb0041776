"""kill -9 a sweep mid-way, run the same command again: the rows of an uninterrupted sweep."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from prunebench.config.sweep_grid import load_sweep
from prunebench.engine.plan import build_plan
from sweep_helpers import count_rows, env, run_sweep, sweep_cmd, table, write_sweep

TIMING = {"seconds", "created_at"}


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_the_rows_of_an_uninterrupted_one(tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep.yaml",
        cases=[
            {"regime": {"name": "geometric", "rate": 0.3}},
            {"regime": {"name": "hybrid", "first": 0.5, "rate": 0.2}},
        ],
        grid={"regime.target": [0.8, 0.9, 0.96]},
    )
    plan = build_plan(load_sweep(sweep)[1])
    killed, fresh = tmp_path / "killed", tmp_path / "fresh"

    proc = subprocess.Popen(
        sweep_cmd(str(sweep), "--results", str(killed)),
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while count_rows(killed, "steps") < 4:  # a few steps stored, most still to come
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = count_rows(killed, "steps")
    assert 4 <= stored < plan.naive_steps
    assert "running" in {r["status"] for r in table(killed, "runs", set())}

    again = run_sweep(str(sweep), "--results", str(killed))
    assert again.returncode == 0, again.stderr
    # the uninterrupted sweep starts from the same dense model (pretraining is not under test)
    shutil.copytree(killed / "dense", fresh / "dense")
    whole = run_sweep(str(sweep), "--results", str(fresh))
    assert whole.returncode == 0, whole.stderr

    for name, drop in (("steps", TIMING), ("epochs", {"seconds"})):
        assert table(killed, name, drop) == table(fresh, name, drop)
    steps = table(killed, "steps", TIMING)
    assert len(steps) == plan.naive_steps
    assert sum(1 - r["reused"] for r in steps) == plan.planned_steps  # each computed once
    assert len(table(killed, "epochs", set())) == sum(r["epochs"] for r in steps)
    assert {r["status"] for r in table(killed, "runs", set())} == {"done"}
