"""Cooperating sweeps: a process leases a step before computing it; others take other steps or
wait; a dead owner's lease is taken over; two processes share a plan and write the rows of one."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import tiny_config
from prunebench.config.sweep_grid import load_sweep
from prunebench.engine.driver import execute_plan
from prunebench.engine.plan import build_plan
from prunebench.store.database import Store
from sweep_helpers import env, run_sweep, sweep_cmd, table, write_sweep

TIMING = {"seconds", "created_at"}
ANYONE = lambda owner, heartbeat: True  # noqa: E731
NOBODY = lambda owner, heartbeat: False  # noqa: E731


def test_a_lease_is_busy_for_others_until_stored_or_taken_over(tmp_path):
    store = Store(tmp_path)
    assert store.lease("checkpoint", "k", "a", None, NOBODY) == "leased"
    assert store.lease("checkpoint", "k", "a", None, NOBODY) == "leased"  # its own again
    assert store.lease("checkpoint", "k", "b", None, NOBODY) == "busy"
    before = store.leases()[0]["heartbeat"]
    time.sleep(0.01)
    store.heartbeat("a")
    assert store.leases()[0]["heartbeat"] > before
    assert store.lease("checkpoint", "k", "b", None, ANYONE) == "leased"  # taken over
    assert [c["owner"] for c in store.leases()] == ["b"]
    store.release("b")
    assert store.leases() == []

    state = ({"w": torch.zeros(2)}, {})
    row = {"run_id": "r", "step": 1, "step_key": "k", "epochs": 1}
    assert store.lease("checkpoint", "k", "a", None, NOBODY) == "leased"
    store.commit_step("k", state, [(row, [])], owner="a")
    assert store.leases() == []  # dropped with the result, in its transaction
    assert store.lease("checkpoint", "k", "b", None, NOBODY) == "stored"
    seen = store.written_at("checkpoint")["k"]
    assert store.lease("checkpoint", "k", "b", seen, NOBODY) == "leased"  # a rewrite is due


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained") / "r"
    execute_plan(build_plan([tiny_config("regime={name: one_shot, target: 0.6}")]), Store(root))
    return root


@pytest.mark.parametrize("owner", ["elsewhere:1:ghost", "here"])
def test_a_lease_whose_owner_stopped_is_taken_over(tmp_path, pretrained, owner):
    """A fresh lease by a process on another machine is taken after `stale_after` seconds
    without a heartbeat; one by a process of this machine that is gone, at once."""
    if owner == "here":
        owner = f"{socket.gethostname()}:{dead_pid()}:ghost"
    cfg = tiny_config("regime={name: one_shot, target: 0.5}")
    plan = build_plan([cfg])
    shutil.copytree(pretrained, tmp_path / "r")
    store = Store(tmp_path / "r")
    key = next(iter(plan.nodes))
    assert store.lease("checkpoint", key, owner, None, ANYONE) == "leased"
    started = time.monotonic()
    summary = execute_plan(plan, store, stale_after=3.0)
    waited = time.monotonic() - started
    assert summary.computed == 1 and not summary.failed
    assert store.leases() == []
    if owner.startswith("elsewhere"):
        assert waited >= 3.0
    else:
        assert waited < 3.0 + summary.seconds / 2  # did not wait for the heartbeat to age


def computed(stdout: str) -> tuple[int, int]:
    found = re.search(r"(\d+) steps computed(?:, (\d+) by another process)?", stdout)
    assert found, stdout
    return int(found.group(1)), int(found.group(2) or 0)


@pytest.mark.slow
def test_two_processes_share_one_plan_and_write_the_rows_of_one(tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep.yaml",
        cases=[{"regime": {"name": "geometric", "steps": 2}}],
        grid={"regime.target": [0.5, 0.6, 0.7, 0.8]},  # four independent two-step chains
    )
    plan = build_plan(load_sweep(sweep)[1])
    assert plan.planned_steps == 8
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    procs = [
        subprocess.Popen(
            sweep_cmd(str(sweep), "--results", str(shared)),
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    counts = [computed(out) for out, _ in outputs]
    assert sum(c for c, _ in counts) == plan.planned_steps  # no step computed twice
    assert all(c > 0 for c, _ in counts), counts  # both worked
    assert all(c + o == plan.planned_steps for c, o in counts)  # each saw every step land

    shutil.copytree(shared / "dense", alone / "dense")
    single = run_sweep(str(sweep), "--results", str(alone))
    assert single.returncode == 0, single.stderr
    assert table(shared, "steps", TIMING) == table(alone, "steps", TIMING)
    assert table(shared, "epochs", {"seconds"}) == table(alone, "epochs", {"seconds"})
    assert {r["status"] for r in table(shared, "runs", set())} == {"done"}
    assert Store(shared).leases() == []
