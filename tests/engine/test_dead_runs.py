"""Issue 23: a run whose process died natively is marked failed, with the reason, by the next
invocation (not left `running`); a run a live process computes is left alone."""

from __future__ import annotations

import socket
import subprocess
import sys

from prunebench.engine.dead_runs import mark_dead_runs
from prunebench.engine.single_run import run
from prunebench.store.database import Store
from prunebench.store.results import load_results


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def status(store: Store, run_id: str) -> tuple[str, str | None]:
    row = store.frame("runs").set_index("run_id").loc[run_id]
    return row["status"], row["error"]


def test_a_run_left_running_by_a_dead_process_is_marked_failed(tmp_path, tiny):
    store = Store(tmp_path)
    result = run(tiny("regime.steps=1"), store)
    store.update_run(result.run_id, {"status": "running", "error": None})  # as a crash leaves it
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = f"{socket.gethostname()}:{other.pid}:live"
        store.lease("checkpoint", "k1", live, None, lambda owner, beat: False)
        assert mark_dead_runs(Store(tmp_path)) == []  # a live process holds a lease: left alone
        assert status(store, result.run_id)[0] == "running"
        pid = dead_pid()
        dead = f"{socket.gethostname()}:{pid}:abcd"
        store.lease("checkpoint", "k2", dead, None, lambda owner, beat: False)
        assert mark_dead_runs(Store(tmp_path)) == []  # one live lease among dead ones: too
        assert status(store, result.run_id)[0] == "running"
    finally:
        other.kill()
        other.wait()
    store.release(live)
    assert mark_dead_runs(Store(tmp_path)) == [result.run_id]
    state, error = status(Store(tmp_path), result.run_id)
    assert state == "failed" and "ended without recording why" in error and "natively" in error
    assert f"{socket.gethostname()} pid {pid})" in error  # names the process that died
    df = load_results(tmp_path)
    assert set(df["status"]) == {"failed"}
