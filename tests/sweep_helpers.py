"""Helpers for the end-to-end sweep tests: a tiny sweep file, the CLI with one torch thread,
and the stored tables without their timing columns."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import yaml

from prunebench.config.sweep_grid import load_sweep
from prunebench.engine.driver import SweepSummary, execute_plan
from prunebench.engine.plan import Plan, build_plan
from prunebench.store.database import Store

SRC = str(Path(__file__).parents[1] / "src")
TINY_SET = {
    "name": None,
    "device": "cpu",
    "model.options": {"width": 8},
    "pretrain.epochs": 4,
    "pretrain.patience": 2,
    "finetune.max_epochs": 2,
    "finetune.patience": 1,
}


def write_sweep(path: Path, cases: list[dict], grid: dict) -> Path:
    path.write_text(yaml.safe_dump({"set": TINY_SET, "cases": cases, "grid": grid}))
    return path


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "prunebench", "sweep", *args, "--quiet", "--threads", "1"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


def run_sweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(sweep_cmd(*args), capture_output=True, text=True, env=env(), timeout=600)


def table(results: Path, name: str, drop: set[str]) -> list[dict]:
    """All rows of a table, in key order, without the columns in `drop`."""
    con = sqlite3.connect(results / "results.sqlite")
    con.row_factory = sqlite3.Row
    order = {"runs": "run_id", "steps": "run_id, step", "epochs": "run_id, step, epoch"}[name]
    rows = [dict(r) for r in con.execute(f"SELECT * FROM {name} ORDER BY {order}")]
    con.close()
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def count_rows(results: Path, name: str) -> int:
    db = results / "results.sqlite"
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are being created
        return 0
    finally:
        con.close()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """One torch thread while it lasts (results are compared at equal thread counts; an
    in-process `--threads N` may have left another count), then the count before."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compute_locally(sweep: Path, computed: Path, results: Path) -> tuple[Plan, SweepSummary]:
    """`sweep` computed again in this process on one torch thread, from the dense model that
    the sweep in `computed` trained."""
    plan = build_plan(load_sweep(sweep)[1])
    shutil.copytree(computed / "dense", results / "dense")
    with one_torch_thread():
        return plan, execute_plan(plan, Store(results))


def assert_same_tables(a: Path, b: Path) -> None:
    """Equal runs, steps and epochs tables, but for times and the device."""
    drop = {"seconds", "created_at"}
    assert table(a, "steps", drop) == table(b, "steps", drop)
    assert table(a, "epochs", {"seconds"}) == table(b, "epochs", {"seconds"})
    run_drop = {"started_at", "finished_at", "device", "digest"}  # the digest covers the times
    assert table(a, "runs", run_drop) == table(b, "runs", run_drop)
