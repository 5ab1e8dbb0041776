"""Failure isolation: a dense model that fails fails only its runs; a full disk is one line with
nothing half-written and a run that resumes; Ctrl-C is exit 130 with runs marked interrupted."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from safetensors import SafetensorError

from conftest import tiny_config
from prunebench.config.identity import run_id
from prunebench.config.sweep_grid import load_sweep
from prunebench.engine.driver import execute_plan
from prunebench.engine.plan import build_plan
from prunebench.errors import TrainingDiverged
from prunebench.store import checkpoints
from prunebench.store.database import Store
from sweep_helpers import count_rows, env, run_sweep, sweep_cmd, table, write_sweep

FULL = "Error while serializing: I/O error: No space left on device (os error 28)"


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def config_file(cfg, where: Path, name: str = "run.yaml") -> str:
    path = where / name
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return str(path)


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_a_diverging_pretraining_fails_only_the_runs_that_start_from_it(tmp_path, invoke):
    healthy = tiny_config("name=healthy")
    diverging = tiny_config("name=diverging", "pretrain.optimizer.lr=1e6")
    plan = build_plan([diverging, healthy])  # the failing one first: the sweep must go on
    store = Store(tmp_path / "r")
    summary = execute_plan(plan, store)
    assert summary.done == [run_id(healthy)]
    assert list(summary.failed) == [run_id(diverging)]
    runs = {r["name"]: r for r in store.runs()}
    assert runs["healthy"]["status"] == "done" and len(store.steps(run_id(healthy))) == 2
    assert runs["diverging"]["status"] == "failed"
    assert runs["diverging"]["error"].startswith("pretraining: TrainingDiverged")
    assert runs["diverging"]["regime"] == "geometric" and not store.steps(run_id(diverging))
    assert isinstance(summary.exceptions[run_id(diverging)], TrainingDiverged)

    code, out, _ = invoke("results", str(store.root))
    assert code == 0 and "pretraining: TrainingDiverged" in out
    code, _, err = invoke("run", config_file(diverging, tmp_path), "-r", str(store.root), "-q")
    assert code == 1 and "training diverged" in err and one_line(err)


def test_a_full_disk_is_one_line_the_run_failed_and_the_rerun_resumes(
    tmp_path, invoke, monkeypatch
):
    """ENOSPC simulated where safetensors writes (the way it fails on a full tmpfs: see the
    next test for a real one): the dense model and step 1 land, step 2 does not."""
    cfg = tiny_config()
    results = tmp_path / "r"
    config = config_file(cfg, tmp_path)
    real = checkpoints.save_file
    writes = []

    def fills_up(tensors, filename, metadata=None):
        writes.append(filename)
        if len(writes) == 3:  # dense, step 1, then the disk is full
            with open(filename, "wb") as handle:
                handle.write(b"\0" * 100)  # a part was written before the error
            raise SafetensorError(FULL)
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoints, "save_file", fills_up)
    code, _, err = invoke("run", config, "-r", str(results), "-q")
    assert code == 1 and one_line(err), err
    assert "No space left on device" in err and "run the same command again to resume" in err
    store = Store(results)
    record = store.run(run_id(cfg))
    assert record["status"] == "failed" and "No space left on device" in record["error"]
    assert len(store.steps(run_id(cfg))) == 1
    assert not leftovers(results)
    code, out, _ = invoke("verify", str(results))
    assert code == 0, out

    monkeypatch.setattr(checkpoints, "save_file", real)
    code, out, err = invoke("run", config, "-r", str(results), "-q")
    assert code == 0, err
    assert store.run(run_id(cfg))["status"] == "done"
    assert [r["reused"] for r in store.steps(run_id(cfg))] == [0, 0]
    assert len(writes) == 3  # the rerun wrote only step 2 (through the real save_file)


@contextlib.contextmanager
def tmpfs(where: Path, size: str):
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()[:80]})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_real_full_disk(tmp_path, invoke):
    """results on a small tmpfs (root only): step 1 lands, then the disk is filled to below a
    checkpoint's size; the run fails in one line and resumes once there is room."""
    wide = ("model.options={width: 24}", "pretrain.epochs=1", "finetune.max_epochs=1")
    short = config_file(tiny_config("regime={name: manual, targets: [0.5]}", *wide), tmp_path, "s")
    long_cfg = tiny_config("regime={name: manual, targets: [0.5, 0.8]}", *wide)
    long = config_file(long_cfg, tmp_path, "l")
    with tmpfs(tmp_path / "fs", "8m") as fs:
        results = fs / "r"
        code, _, err = invoke("run", short, "-r", str(results), "-q")
        assert code == 0, err
        size = next((results / "checkpoints").glob("*.safetensors")).stat().st_size
        assert size > 250_000  # a few pages of the database fit beside half of it
        stat = os.statvfs(fs)
        filler = fs / "filler"
        filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - size // 2))

        code, _, err = invoke("run", long, "-r", str(results), "-q")
        assert code == 1 and one_line(err) and "No space left on device" in err, err
        con = sqlite3.connect(results / "results.sqlite")
        status, error = con.execute(
            "SELECT status, error FROM runs WHERE run_id=?", (run_id(long_cfg),)
        ).fetchone()
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        assert status == "failed" and "No space left on device" in error
        assert not leftovers(results)

        filler.unlink()
        code, _, err = invoke("run", long, "-r", str(results), "-q")
        assert code == 0, err
        rows = Store(results).steps(run_id(long_cfg))
        assert [r["reused"] for r in rows] == [1, 0]  # step 1 from the short run; step 2 now
        assert invoke("verify", str(results))[0] == 0


@pytest.mark.slow
def test_ctrl_c_exits_130_marks_runs_interrupted_and_the_rerun_resumes(tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep.yaml",
        cases=[{"regime": {"name": "geometric", "rate": 0.5}}],
        grid={"regime.target": [0.8, 0.9]},
    )
    results = tmp_path / "r"
    proc = subprocess.Popen(
        sweep_cmd(str(sweep), "--results", str(results)),
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while count_rows(results, "steps") < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted; run the same command again to resume"
    statuses = {r["status"] for r in table(results, "runs", set())}
    assert "running" not in statuses and "interrupted" in statuses
    assert not leftovers(results)

    again = run_sweep(str(sweep), "--results", str(results))
    assert again.returncode == 0, again.stderr
    assert {r["status"] for r in table(results, "runs", set())} == {"done"}
    assert count_rows(results, "steps") == build_plan(load_sweep(sweep)[1]).naive_steps
