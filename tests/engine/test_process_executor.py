"""Worker processes on this machine (--executor processes): the rows of the local executor, and a
worker that dies fails its step only."""

from __future__ import annotations

import pytest

from prunebench.engine.dense_models import stored_dense
from prunebench.engine.executors.base import StepJob
from prunebench.engine.executors.processes import ProcessExecutor
from prunebench.engine.plan import build_plan
from prunebench.engine.workspace import Workspace
from prunebench.store.database import Store
from sweep_helpers import assert_same_tables, compute_locally, run_sweep, write_sweep


@pytest.mark.slow
def test_two_worker_processes_write_the_rows_of_the_local_executor(tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep.yaml",
        cases=[
            {"regime": {"name": "one_shot"}},
            {"regime": {"name": "geometric", "rate": 0.4}},
            {
                "name": "diverges",
                "regime": {"name": "geometric", "rate": 0.4},
                "finetune.optimizer.lr": 1e10,
            },
        ],
        grid={"regime.target": [0.7, 0.9]},
    )
    procs_dir, local_dir = tmp_path / "processes", tmp_path / "local"
    args = ["--results", str(procs_dir), "--executor", "processes", "--workers", "2"]
    proc = run_sweep(str(sweep), *args)
    assert proc.returncode == 1, proc.stderr  # the diverging runs fail; the others finish
    assert "4 done now, 2 failed" in proc.stdout

    _, summary = compute_locally(sweep, procs_dir, local_dir)
    assert len(summary.done) == 4 and len(summary.failed) == 2
    assert_same_tables(procs_dir, local_dir)


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_step_and_is_replaced(tmp_path, tiny):
    plan = build_plan([tiny("regime.steps=1")])
    (key,) = plan.nodes
    run = plan.runs[0]
    job = StepJob(key, run.steps[0], run.run_id, run.cfg, run.title, 1, None)
    workspace = Workspace(stored_dense(Store(tmp_path)))
    executor = ProcessExecutor(workers=1, threads=1)
    executor.start()
    try:
        executor.submit(job, workspace)
        (worker,) = [w for _, w in executor._inflight.values()]
        worker.process.kill()
        ((_, dead),) = executor.wait()
        assert dead.error.startswith("worker process died (exit code ")
        assert executor.has_room() and not executor.busy
        executor.submit(job, workspace)  # the replacement computes it
        ((_, result),) = executor.wait()
        assert result.error is None and result.row["step"] == 1
    finally:
        executor.close()
    assert not worker.process.is_alive()
