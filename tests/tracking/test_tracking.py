"""MLflow and TensorBoard tracking: what they hold, read back with their own readers, equals the
SQLite rows; a step is logged once across resumes; a failing tracker never fails a run."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from prunebench.config.identity import run_id
from prunebench.engine.driver import execute_plan
from prunebench.engine.executors import base as executors
from prunebench.engine.plan import build_plan
from prunebench.engine.single_run import run
from prunebench.errors import ConfigError
from prunebench.store.database import Store
from prunebench.tracking.base import EPOCH_COLUMNS, STEP_COLUMNS, RunInfo, StepRecord, flatten
from prunebench.tracking.hub import Tracking

pytest.importorskip("mlflow", reason="the tracking extra is not installed: pip install '.[track]'")
pytest.importorskip("tensorboard", reason="the tracking extra is not installed")

from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


@pytest.fixture(autouse=True)
def file_store(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


def shared(tiny):
    """One-shot to 0.5 and a hybrid whose first step is the same step (a reused row)."""
    return [
        tiny("name=one-shot", "regime.name=one_shot", "regime.steps=null", "regime.target=0.5"),
        tiny(
            "name=hybrid",
            "regime.name=hybrid",
            "regime.steps=null",
            "regime.first=0.5",
            "regime.rate=0.4",
            "regime.target=0.8",
        ),
    ]


# ---------------------------------------------------------------- reading back


def mlflow_runs(uri: str) -> tuple[MlflowClient, list]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("prunebench")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def history(client: MlflowClient, mlflow_run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(mlflow_run_id, key))


def expected_steps(store: Store, rid: str, column: str) -> list[tuple[int, float]]:
    return [(s["step"], float(s[column])) for s in store.steps(rid) if s[column] is not None]


def expected_epochs(store: Store, rid: str, column: str) -> list[tuple[int, float]]:
    out = []
    for s in store.steps(rid):
        before = s["cumulative_epochs"] - s["epochs"]
        out += [(before + e["epoch"], float(e[column])) for e in store.epochs(rid, s["step"])]
    return sorted(out)


def assert_mlflow_equals_sqlite(uri: str, store: Store, sweep: str | None) -> None:
    client, found = mlflow_runs(uri)
    kinds = [r.data.tags["prunebench.kind"] for r in found]
    runs = {
        r.data.tags["prunebench.run_id"]: r
        for r in found
        if r.data.tags.get("prunebench.kind") == "run"
    }
    stored = store.runs()
    assert kinds.count("run") == len(stored) == len(runs)
    parents = [r for r in found if r.data.tags["prunebench.kind"] == "sweep"]
    if sweep is None:
        assert parents == []
    else:
        assert [p.info.run_name for p in parents] == [sweep]
    for row in stored:
        got = runs[row["run_id"]]
        assert got.info.status == "FINISHED"
        assert got.data.params == flatten(json.loads(row["config_json"]))
        for key in ("regime", "criterion", "structure", "seed", "model", "dataset"):
            assert got.data.tags[key] == str(row[key])
        if sweep is not None:
            assert got.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert got.data.metrics["dense/test_top1"] == row["dense_test_top1"]
        mid = got.info.run_id
        steps = store.steps(row["run_id"])
        assert got.data.tags["prunebench.logged_steps"] == ",".join(str(s["step"]) for s in steps)
        for column in STEP_COLUMNS:
            assert history(client, mid, f"step/{column}") == expected_steps(
                store, row["run_id"], column
            ), column
        for column in EPOCH_COLUMNS:
            assert history(client, mid, f"epoch/{column}") == expected_epochs(
                store, row["run_id"], column
            ), column


def tensorboard_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: sorted((e.step, e.value) for e in acc.Scalars(t)) for t in acc.Tags()["scalars"]}


def assert_tensorboard_equals_sqlite(root: Path, store: Store) -> None:
    dirs = {p.name.rsplit("-", 1)[1]: p for p in root.iterdir()}
    stored = store.runs()
    assert len(dirs) == len(stored)
    for row in stored:
        scalars = tensorboard_scalars(dirs[row["run_id"][:8]])
        rid = row["run_id"]
        for column in STEP_COLUMNS:
            expected = expected_steps(store, rid, column)
            got = scalars.get(f"step/{column}", [])
            assert [s for s, _ in got] == [s for s, _ in expected], column
            assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)
        for column in EPOCH_COLUMNS:
            expected = expected_epochs(store, rid, column)
            got = scalars.get(f"epoch/{column}", [])
            assert [s for s, _ in got] == [s for s, _ in expected], column
            assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)
        assert scalars["dense/test_top1"][0][1] == pytest.approx(row["dense_test_top1"], rel=1e-6)


# ---------------------------------------------------------------- end to end


def test_a_resumed_sweep_logs_every_step_once_equal_to_the_sqlite_rows(
    tmp_path, tiny, monkeypatch, invoke
):
    configs = shared(tiny)
    plan = build_plan(configs)
    store = Store(tmp_path / "r")
    mlruns, tb = tmp_path / "mlruns", tmp_path / "tb"
    log = [f"mlflow={mlruns}", f"tensorboard={tb}"]
    real = executors.compute_step

    def fail_at_0_8(ctx, model, pruner, step, rid):
        if abs(step.target - 0.8) < 1e-9:
            raise RuntimeError("killed")
        return real(ctx, model, pruner, step, rid)

    monkeypatch.setattr(executors, "compute_step", fail_at_0_8)
    first = execute_plan(plan, store, log=log, sweep="demo")
    assert len(first.failed) == 1  # the hybrid's second step; its first step is logged
    monkeypatch.setattr(executors, "compute_step", real)
    second = execute_plan(plan, store, log=log, sweep="demo")  # resumes the hybrid
    assert not second.failed and second.computed == 1
    third = execute_plan(plan, store, log=log, sweep="demo")  # nothing to do, nothing to log
    assert third.computed == 0

    steps = store.frame("steps")
    assert len(steps) == 3 and int(steps["reused"].sum()) == 1
    assert_mlflow_equals_sqlite(mlruns.as_uri(), store, "demo")
    assert_tensorboard_equals_sqlite(tb, store)

    # the report goes to the sweep's parent run as artifacts
    code, out, err = invoke("report", str(store.root), "--log", f"mlflow={mlruns}")
    assert code == 0, err
    client, found = mlflow_runs(mlruns.as_uri())
    parent = next(r for r in found if r.data.tags["prunebench.kind"] == "sweep")
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.md"} <= names
    assert f"report logged to mlflow={mlruns}" in out


def test_logging_later_catches_up_once(tmp_path, tiny):
    """A sweep computed without --log, then the same command with --log (twice)."""
    configs = shared(tiny)
    store = Store(tmp_path / "r")
    execute_plan(build_plan(configs), store)
    for _ in range(2):
        execute_plan(build_plan(configs), store, log=["mlflow", "tensorboard"], sweep="later")
    assert_mlflow_equals_sqlite((store.root / "mlruns").as_uri(), store, "later")
    assert_tensorboard_equals_sqlite(store.root / "tensorboard", store)
    # a finished run again with --log: nothing computed, nothing logged twice
    result = run(configs[0], store, log=["mlflow"])
    assert result.already_done and result.computed == 0
    assert_mlflow_equals_sqlite((store.root / "mlruns").as_uri(), store, "later")


def test_the_config_log_key_logs_and_does_not_change_the_run_id(tmp_path, tiny):
    cfg = tiny(f"log=['tensorboard={tmp_path / 'tb'}']")
    assert run_id(cfg) == run_id(tiny())
    result = run(cfg, Store(tmp_path / "r"))
    assert result.status == "done"
    assert_tensorboard_equals_sqlite(tmp_path / "tb", Store(tmp_path / "r"))
    with pytest.raises(ConfigError, match=r"config: log: unknown backend 'wandb'"):
        tiny("log=[wandb]")


# ---------------------------------------------------------------- failures


def test_a_dead_server_gives_one_warning_and_the_run_goes_on(tmp_path, tiny, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(tiny(), Store(tmp_path / "r"), log=[f"mlflow=http://127.0.0.1:{port}"])
    assert result.status == "done" and len(result.rows) == 2
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    assert "mlflow logging stopped" in warnings[0]
    assert f"--log mlflow=http://127.0.0.1:{port}" in warnings[0]


class SlowTracker:
    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay, self.logged = delay, []

    def open(self, session):
        pass

    def start_run(self, run):
        return set()

    def log_step(self, run, record, logged):
        time.sleep(self.delay)
        self.logged.append(record.step)

    def held_evaluations(self, run):
        return set()

    def log_evaluation(self, run, record, held):
        pass

    def finish_run(self, run, status, error):
        pass

    def close(self, failed):
        pass


class NoRows:
    def steps(self, run_id):
        return []

    def epochs(self, run_id, step):
        return []


def test_a_slow_tracker_never_slows_the_driver_and_close_is_bounded():
    tracker = SlowTracker(0.3)
    tracking = Tracking([tracker], close_timeout=0.5)
    tracking.start(None, [RunInfo("r", "r", {}, {})], NoRows())
    started = time.perf_counter()
    for step in range(1, 6):
        tracking.steps([StepRecord("r", {"step": step, "target": 0.1 * step})])
        tracking.steps([StepRecord("r", {"step": step, "target": 0.1 * step})])  # twice: once
    assert time.perf_counter() - started < 0.1
    warnings = tracking.close()
    assert time.perf_counter() - started < 1.5
    assert len(warnings) == 1 and "not finished after 0.5 s" in warnings[0]
    assert tracker.logged == sorted(set(tracker.logged))  # never twice


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("wandb", "--log: unknown backend 'wandb' (known: mlflow, tensorboard)"),
        ("tensorboard=", "--log tensorboard= needs a location"),
        ("tensorboard={file}/tb", "is a file, not a directory"),
    ],
)
def test_bad_log_values_fail_before_any_compute(tmp_path, invoke, value, message):
    (tmp_path / "afile").write_text("")
    results = tmp_path / "r"
    code, _, err = invoke(
        "run", "configs/digits.yaml", "-r", str(results), "--log", value.format(file=tmp_path / "afile")
    )  # fmt: skip
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not results.exists()


def test_without_the_extra_log_says_how_to_install_it(tmp_path, invoke, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    code, _, err = invoke(
        "run", "configs/digits.yaml", "-r", str(tmp_path / "r"), "--log", "mlflow"
    )
    assert code == 2
    assert "pip install 'prunebench[track]'" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- a real server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 (skipped, with the reason, where it cannot start)."""
    if any(importlib.util.find_spec(m) is None for m in ("flask", "sqlalchemy", "alembic")):
        pytest.skip("mlflow server needs its server packages: pip install '.[track-server]'")
    port = _free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", (tmp_path / "server-store").as_uri(),
        "--artifacts-destination", (tmp_path / "server-artifacts").as_uri(),
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                pytest.skip(f"mlflow server did not start within 120 s: {' | '.join(tail)}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_a_real_mlflow_server_reads_back_equal(tmp_path, tiny, mlflow_server):
    store = Store(tmp_path / "r")
    before = time.perf_counter()
    execute_plan(build_plan(shared(tiny)), store, log=[f"mlflow={mlflow_server}"], sweep="srv")
    assert time.perf_counter() - before < 120
    assert_mlflow_equals_sqlite(mlflow_server, store, "srv")
