"""The Ray executor: the same rows as the local executor (on a local instance), the resources
each worker asks for (fractional GPUs, checked without a GPU), and no one gets in without the
instance's private token."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from prunebench.engine.driver import execute_plan
from prunebench.engine.executors.choice import choose_executor
from prunebench.engine.executors.ray import RayExecutor
from prunebench.engine.executors.ray_auth import cluster_requires_token, existing_cluster
from prunebench.engine.plan import build_plan
from prunebench.errors import PrunebenchError
from prunebench.store.database import Store
from sweep_helpers import assert_same_tables, compute_locally, run_sweep, table, write_sweep

pytest.importorskip("ray")
grpc = pytest.importorskip("grpc")


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

    plan, summary = compute_locally(sweep, ray_dir, local_dir)
    assert len(summary.done) == 6 and len(summary.failed) == 2
    assert_same_tables(ray_dir, local_dir)
    drop = {"seconds", "created_at"}
    steps = table(ray_dir, "steps", drop)
    good = [r for r in plan.runs if r.label != "diverges"]
    assert len(steps) == sum(len(r.steps) for r in good)  # no row lost or duplicated
    assert sum(1 - r["reused"] for r in steps) == len({s.key for r in good for s in r.steps})


def probe_gcs(address: str, token: str | None) -> grpc.StatusCode:
    """One cheap GCS call, with or without the token (a client Ray did not configure)."""
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=10, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.slow
def test_a_local_ray_instance_lets_no_one_in_without_its_private_token(tmp_path, monkeypatch):
    import ray

    monkeypatch.setenv("HOME", str(tmp_path))  # Ray must not write ~/.ray/auth_token (0644)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # never for an instance prunebench starts
    monkeypatch.setenv("RAY_AUTH_TOKEN", "the-users-own")
    warnings: list[str] = []
    executor = RayExecutor(workers=1, threads=1, warn=warnings.append)
    executor.start()
    try:
        token_file = Path(os.environ["RAY_AUTH_TOKEN_PATH"])
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600  # not readable by others
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        token = token_file.read_text()
        assert re.fullmatch("[0-9a-f]{64}", token)  # fresh, 256 bits
        assert os.environ["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" not in os.environ
        gcs = ray.get_runtime_context().gcs_address
        assert probe_gcs(gcs, None) == grpc.StatusCode.UNAUTHENTICATED
        assert probe_gcs(gcs, "the-users-own") == grpc.StatusCode.UNAUTHENTICATED
        assert probe_gcs(gcs, token) == grpc.StatusCode.OK
        assert cluster_requires_token(gcs) is True  # what `--address` asks a cluster
    finally:
        executor.close()
    assert not token_file.parent.exists()  # removed with the instance
    assert os.environ["RAY_AUTH_MODE"] == "disabled"  # the user's settings are back
    assert os.environ["RAY_AUTH_TOKEN"] == "the-users-own"
    assert "RAY_AUTH_TOKEN_PATH" not in os.environ
    assert not (tmp_path / ".ray" / "auth_token").exists()
    assert len(warnings) == 1 and "RAY_AUTH_MODE=disabled is ignored" in warnings[0]


def test_joining_an_address_keeps_the_users_token_settings(tmp_path, monkeypatch):
    """Without an answer from the address (here: nothing listens), the user's settings go
    through unchanged, in token mode when the user holds a token and chose no mode."""
    closed = "127.0.0.1:1"
    assert cluster_requires_token(closed) is None
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    existing_cluster(closed, print).restore()  # no token anywhere: no mode is forced
    assert "RAY_AUTH_MODE" not in os.environ
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    auth = existing_cluster(closed, print)
    assert os.environ["RAY_AUTH_MODE"] == "token"
    auth.restore()
    assert "RAY_AUTH_MODE" not in os.environ
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit choice is the user's
    existing_cluster(closed, print).restore()
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


class FakeRay:
    """Stands in for the `ray` module: a connected cluster with the given resources; records
    what each worker asks for."""

    def __init__(self, resources: dict[str, float]) -> None:
        self.resources = resources
        self.options: dict | None = None
        self.actors = 0

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict[str, float]:
        return self.resources

    def remote(self, **options):
        self.options = options
        fake = self

        class Actor:
            @staticmethod
            def remote(*args):
                fake.actors += 1
                return object()

        return lambda cls: Actor

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize(
    ("resources", "gpus_per_step", "workers", "expected"),
    [
        ({"CPU": 16}, 0.0, None, (16, {"num_cpus": 1, "num_gpus": 0})),
        ({"CPU": 16, "GPU": 8}, 1.0, None, (8, {"num_cpus": 1.0, "num_gpus": 1.0})),
        # four steps per GPU: 32 workers share the 16 CPUs, so that the GPUs bound them
        ({"CPU": 16, "GPU": 8}, 0.25, None, (32, {"num_cpus": 0.5, "num_gpus": 0.25})),
        ({"CPU": 16, "GPU": 1}, 0.25, 2, (2, {"num_cpus": 1.0, "num_gpus": 0.25})),
        ({"CPU": 16, "GPU": 2}, None, None, (2, {"num_cpus": 1.0, "num_gpus": 1.0})),
        ({"CPU": 4}, None, None, (4, {"num_cpus": 1, "num_gpus": 0})),  # no GPUs: CPU steps
    ],
)
def test_workers_ask_ray_for_their_share_of_a_gpu(
    monkeypatch, resources, gpus_per_step, workers, expected
):
    fake = FakeRay(resources)
    monkeypatch.setitem(sys.modules, "ray", fake)
    executor = RayExecutor(workers=workers, threads=1, gpus_per_step=gpus_per_step)
    executor.start()
    assert (executor.slots, fake.options) == expected
    assert fake.actors == expected[0]


def test_more_gpu_per_step_than_the_cluster_has_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", FakeRay({"CPU": 8}))
    with pytest.raises(PrunebenchError, match="0 GPUs"):
        RayExecutor(threads=1, gpus_per_step=0.5).start()


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_two_steps_share_one_gpu_and_write_the_rows_of_the_local_executor(tmp_path, tiny):
    """Fractional GPUs for real: a Ray instance that declares one GPU, two workers asking for
    half of it each. Ray schedules both (it only counts GPUs); the steps run on the CPU here."""
    import ray

    configs = [
        tiny("regime.name=one_shot", "regime.steps=null", "regime.target=0.5"),
        tiny("regime.steps=null", "regime.rate=0.5", "regime.target=0.8"),
    ]
    plan = build_plan(configs)
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor(threads=1, gpus_per_step=0.5)
        summary = execute_plan(plan, Store(tmp_path / "ray"), executor)
        assert executor.options["num_gpus"] == 0.5 and executor.slots == 2
        shutil.copytree(tmp_path / "ray" / "dense", tmp_path / "local" / "dense")
        local = execute_plan(plan, Store(tmp_path / "local"))
    finally:
        ray.shutdown()
    assert len(summary.done) == len(local.done) == 2
    drop = {"seconds", "created_at"}
    assert table(tmp_path / "ray", "steps", drop) == table(tmp_path / "local", "steps", drop)


def test_gpus_per_step_needs_the_ray_executor(tmp_path, invoke):
    sweep = write_sweep(
        tmp_path / "sweep.yaml", cases=[{"regime": {"name": "one_shot", "target": 0.5}}], grid={}
    )
    for value in ("0.5", "-1"):
        code, _, err = invoke("sweep", str(sweep), "-r", str(tmp_path), "--gpus-per-step", value)
        assert code == 2 and "--gpus-per-step" in err
    assert not (tmp_path / "results.sqlite").exists()


def test_runs_that_stay_on_the_cpu_take_no_gpu_share_unless_asked(tiny):
    cpu = [tiny("device=cpu"), tiny("device=cpu", "seed=1")]
    assert choose_executor("ray", cpu).gpus_per_step == 0.0
    assert choose_executor("ray", cpu, gpus_per_step=0.5).gpus_per_step == 0.5
    mixed = [*cpu, tiny("device=auto")]  # may use a GPU: the executor's own default
    assert choose_executor("ray", mixed).gpus_per_step is None
