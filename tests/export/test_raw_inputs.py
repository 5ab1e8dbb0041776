"""An export carries its data source's preprocessing: reloaded in a fresh process with
`load_pruned(path, raw_inputs=True)`, an `arrays` model fed the raw NumPy features and an
`image_folder` model fed the raw image files reproduce the test accuracy the run recorded."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch
import yaml

from own_data import MODEL_FILE, image_folders, write_module
from prunebench.config.schema import DataConfig
from prunebench.data.arrays import build_arrays
from prunebench.export.preprocess import Preprocess
from prunebench.store.results import load_results
from sweep_helpers import env

BASE = {
    "device": "cpu",
    "pretrain": {"epochs": 3, "patience": None},
    "finetune": {"mode": "fixed", "epochs": 1},
    "regime": {"name": "one_shot", "target": 0.5},
    "prune": {"latency": False},
}

ARRAYS_PROBE = """
import json, sys, numpy as np, torch, prunebench
model = prunebench.load_pruned(sys.argv[1], raw_inputs=True)
data = np.load(sys.argv[2])
with torch.no_grad():
    predicted = model(data["x_test"]).argmax(1).numpy()
print(json.dumps(int((predicted == data["y_test"]).sum())))
"""

FOLDER_PROBE = """
import json, sys, pathlib, torch, prunebench
from PIL import Image
model = prunebench.load_pruned(sys.argv[1], raw_inputs=True)
classes = sorted(p.name for p in pathlib.Path(sys.argv[2]).iterdir())
images, labels = [], []
for label, name in enumerate(classes):
    for file in sorted((pathlib.Path(sys.argv[2]) / name).glob("*.png")):
        images.append(Image.open(file))
        labels.append(label)
with torch.no_grad():
    predicted = model(images).argmax(1)
print(json.dumps(int((predicted == torch.tensor(labels)).sum())))
"""


def run_and_export(tmp_path, invoke, model: str, data: dict) -> tuple[float, dict]:
    write_module(tmp_path, "mymodel", MODEL_FILE)
    config = {**BASE, "model": {"name": model}, "data": data}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    code, out, err = invoke("run", "run.yaml", "-r", "results", "-q")
    assert code == 0, err + out
    df = load_results(tmp_path / "results")
    row = df[df["step"].notna()].sort_values("step").iloc[-1]
    code, _, err = invoke("export", "results", "exported", "--run", row["run_id"])
    assert code == 0, err
    structure = json.loads((tmp_path / "exported" / "structure.json").read_text())
    return float(row[f"test_{row['metric']}"]), structure["data_info"]["preprocessing"]


def correct_in_fresh_process(tmp_path, probe: str, data: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", probe, "exported", data],
        capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_arrays_export_reproduces_accuracy_on_raw_features(tmp_path, invoke, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 5)) * [10, 3, 1, 1, 1] + [50, -20, 0, 5, 5]  # far from standard
    y = (x[:, 0] > 50).astype(np.int64) + (x[:, 1] > -20)
    np.savez(tmp_path / "data.npz", x_train=x[:120], y_train=y[:120], x_test=x[120:],
             y_test=y[120:])  # fmt: skip
    data = {"name": "arrays", "root": "data.npz", "batch_size": 16}
    recorded, steps = run_and_export(tmp_path, invoke, "python:mymodel.py:mlp", data)
    train = x[:120]
    assert steps["kind"] == "standardize" and len(steps["mean"]) == 5
    # the recorded mean is that of the training split (val carved from it): near the truth
    assert abs(steps["mean"][0] - train[:, 0].mean()) < 3
    correct = correct_in_fresh_process(tmp_path, ARRAYS_PROBE, "data.npz")
    assert abs(correct - recorded * 40) <= 1, (correct, recorded)


def test_image_folder_export_reproduces_accuracy_on_image_files(tmp_path, invoke, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image_folders(tmp_path / "imgs", classes=3, size=8)
    data = {"name": "image_folder", "root": "imgs", "batch_size": 16, "image_size": 12}
    recorded, steps = run_and_export(tmp_path, invoke, "python:mymodel.py:build", data)
    assert steps["kind"] == "image" and steps["decode"] == {"mode": "RGB", "size": 12}
    assert len(steps["mean"]) == 3 and steps["max_value"] == 255.0
    correct = correct_in_fresh_process(tmp_path, FOLDER_PROBE, "imgs/test")
    assert abs(correct - recorded * 12) <= 1, (correct, recorded)


def test_recorded_preprocessing_gives_the_test_batches_the_data_source_gave(tmp_path):
    """`Preprocess` on the raw test arrays equals the data source's own test batches: images
    stored NHWC uint8 and resized to data.image_size, and standardised feature vectors."""
    rng = np.random.default_rng(1)
    pictures = rng.integers(0, 256, size=(30, 12, 12, 3), dtype=np.uint8)
    features = rng.normal(size=(30, 3)) * 7 + 2
    labels = np.arange(30) % 2
    for name, x, size in (("img", pictures, 8), ("vec", features, None)):
        root = tmp_path / f"{name}.npz"
        np.savez(root, x_train=x[:20], y_train=labels[:20], x_test=x[20:], y_test=labels[20:])
        cfg = DataConfig(name="arrays", root=root, batch_size=4, eval_batch_size=100,
                         image_size=size)  # fmt: skip
        bundle = build_arrays(cfg, torch.device("cpu"))
        ((given, _),) = list(bundle.test)
        replayed = Preprocess(bundle.info.preprocessing)(x[20:])
        assert replayed.shape == given.shape
        torch.testing.assert_close(replayed, given, rtol=0, atol=1e-6)


def test_raw_feature_vectors_are_standardised_with_the_training_split_statistics(tmp_path):
    """Independent of the code path both sides share (data.arrays.Standardize): the replayed
    test features equal (x - mean) / std of x_train, computed here in float64 (population std;
    a constant feature divides by 1)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4)) * [9.0, 0.5, 3.0, 1.0] + [100.0, -3.0, 0.0, 7.0]
    x[:, 3] = 7.0
    labels = np.arange(40) % 2
    root = tmp_path / "vec.npz"
    np.savez(root, x_train=x[:20], y_train=labels[:20], x_val=x[20:30], y_val=labels[20:30],
             x_test=x[30:], y_test=labels[30:])  # fmt: skip
    bundle = build_arrays(DataConfig(name="arrays", root=root, batch_size=4), torch.device("cpu"))
    std = x[:20].std(axis=0)
    expected = (x[30:] - x[:20].mean(axis=0)) / np.where(std > 0, std, 1.0)
    replayed = Preprocess(bundle.info.preprocessing)(x[30:])
    torch.testing.assert_close(replayed.double(), torch.from_numpy(expected), rtol=0, atol=1e-5)
