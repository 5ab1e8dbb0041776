"""Your own model and data through the whole pipeline: a sweep, the report, an export and
`load_pruned` in a fresh process that never saw the model's registration, for a `torchvision:`
model and for a `python:` builder, both on an `image_folder` dataset."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from own_data import MODEL_FILE, image_folders, write_module
from prunebench.config.schema import RunConfig
from prunebench.engine.dense_models import stored_dense
from prunebench.engine.workspace import Workspace
from prunebench.store.database import Store
from prunebench.store.results import load_results
from sweep_helpers import env

pytestmark = pytest.mark.slow

BASE = {
    "device": "cpu",
    "data": {"name": "image_folder", "root": "imgs", "batch_size": 16, "image_size": 32},
    "pretrain": {"epochs": 2, "patience": None},
    "finetune": {"mode": "fixed", "epochs": 1},
    "prune": {"latency": False},
}
PROBE = "import json, sys, torch; import prunebench; m = prunebench.load_pruned(sys.argv[1]); " \
    "torch.manual_seed(0); print(json.dumps(m(torch.randn(2, 3, 32, 32)).tolist()))"  # fmt: skip


def sweep(tmp_path, invoke, model: dict, prune: dict) -> tuple[list[str], object]:
    base = {**BASE, "model": model, "prune": {**BASE["prune"], **prune}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    grid = {"regime": [{"name": "one_shot", "target": 0.5},
                       {"name": "geometric", "steps": 2, "target": 0.5}]}  # fmt: skip
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"base": "base.yaml", "grid": grid}))
    code, out, err = invoke("sweep", "sweep.yaml", "-r", "results", "--quiet")
    assert code == 0, err + out
    df = load_results(tmp_path / "results")
    assert set(df["status"]) == {"done"} and len(df) == 3
    code, out, err = invoke("report", "results")
    assert code == 0, err
    assert (tmp_path / "results" / "report" / "report.html").stat().st_size > 10_000
    return sorted(df["run_id"].unique()), df


def export_and_reload(tmp_path, invoke, run_id: str, df) -> None:
    code, _, err = invoke("export", "results", "exported", "--run", run_id)
    assert code == 0, err
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE, "exported"],
        capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    # the same model restored in this process from the results directory
    row = df[(df["run_id"] == run_id)].sort_values("step").iloc[-1]
    store = Store(tmp_path / "results")
    cfg = RunConfig.model_validate(json.loads(row["config_json"]))
    ctx = Workspace(stored_dense(store)).context(cfg)
    model, _ = ctx.restore(*store.load_checkpoint(row["step_key"]))
    torch.manual_seed(0)
    expected = model.eval()(torch.randn(2, 3, 32, 32)).tolist()
    assert json.loads(loaded.stdout) == expected


def test_torchvision_model_sweep_report_export_reload(tmp_path, invoke, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image_folders(tmp_path / "imgs", classes=3, size=16)
    runs, df = sweep(
        tmp_path, invoke, {"name": "torchvision:squeezenet1_1"}, {"structure": "structured"}
    )
    description = df["prunable_json"].iloc[0]
    assert "classifier.1" in description  # SqueezeNet's Conv2d classifier is found and kept
    export_and_reload(tmp_path, invoke, runs[0], df)
    structure = json.loads((tmp_path / "exported" / "structure.json").read_text())
    assert structure["model"]["name"] == "torchvision:squeezenet1_1"


def test_python_model_sweep_report_export_reload(tmp_path, invoke, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image_folders(tmp_path / "imgs", classes=3, size=16)
    write_module(tmp_path, "mymodel", MODEL_FILE, groups=2)
    model = {"name": "python:mymodel.py:build", "options": {"width": 8}}
    runs, df = sweep(tmp_path, invoke, model, {"structure": "structured", "criterion": "taylor"})
    export_and_reload(tmp_path, invoke, runs[-1], df)
    # loaded elsewhere, the builder's file must be found: one line says which
    elsewhere = subprocess.run(
        [sys.executable, "-m", "prunebench", "--version"], capture_output=True, text=True, env=env()
    )
    assert elsewhere.returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "exported")],
        capture_output=True, text=True, env=env(), cwd=other, timeout=600,
    )  # fmt: skip
    assert loaded.returncode != 0
    assert "file 'mymodel.py' does not exist (paths are from the cwd)" in loaded.stderr


def test_model_registered_from_python_exports_through_its_module(tmp_path, invoke, monkeypatch):
    """`MODELS.register` in an importable module: the export names that module, and
    load_pruned in a process where the registration never ran rebuilds from it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    image_folders(tmp_path / "imgs", classes=3, size=16)
    write_module(tmp_path, "mymodel", MODEL_FILE)
    (tmp_path / "my_registry.py").write_text(
        "from prunebench.models import MODELS, ModelSpec\n"
        "from mymodel import build\n"
        "SPEC = ModelSpec(build=build, description='my net')\n"
        "MODELS.register('my_net', SPEC)\n"
    )
    import my_registry  # noqa: F401  (registers 'my_net' in this process only)

    from prunebench.models import MODELS

    try:
        runs, _ = sweep(tmp_path, invoke, {"name": "my_net"}, {})
        code, _, err = invoke("export", "results", "exported", "--run", runs[0])
        assert code == 0, err
        structure = json.loads((tmp_path / "exported" / "structure.json").read_text())
        assert structure["model"]["name"] == "python:my_registry:SPEC"
        loaded = subprocess.run(
            [sys.executable, "-c", PROBE, "exported"],
            capture_output=True, text=True, env={**env(), "PYTHONPATH": f"{env()['PYTHONPATH']}:{tmp_path}"},
            cwd=tmp_path, timeout=600,
        )  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr
        missing = subprocess.run(
            [sys.executable, "-c", PROBE, str(tmp_path / "exported")],
            capture_output=True, text=True, env=env(), cwd=tmp_path.parent, timeout=600,
        )  # fmt: skip
        assert "cannot import module 'my_registry'" in missing.stderr
        assert "put the directory that holds it on PYTHONPATH" in missing.stderr
    finally:
        MODELS._items.pop("my_net", None)
        MODELS._loaded.pop("my_net", None)
