"""Bad model and dataset sources: one line, exit code 2, nothing written, before any compute."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from own_data import MODEL_FILE, image_folders, write_folder, write_module

DIGITS = Path(__file__).parents[2] / "configs" / "digits.yaml"


@pytest.fixture
def own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, "mymodel", MODEL_FILE)
    write_module(tmp_path, "broken", "import no_such_package_xyz\n")
    image_folders(tmp_path / "imgs", classes=2)
    write_folder(tmp_path / "one", classes=1, per_class=4)
    write_module(tmp_path, "uncuttable", UNCUTTABLE)
    image_folders(tmp_path / "garbled", classes=2)
    (tmp_path / "garbled" / "train" / "class_1" / "x.png").write_bytes(b"\x89PNG not really")
    image_folders(tmp_path / "truncated", classes=2)
    truncated = tmp_path / "truncated" / "test" / "class_0" / "0.png"
    truncated.write_bytes(truncated.read_bytes()[:40])
    issue_24_inputs(tmp_path)
    return tmp_path


PLAIN = """
import torch
from torch import nn


def build(info):
    return nn.Sequential(nn.Flatten(), nn.Linear(192, 256), nn.Linear(256, info.num_classes))


def narrow(info):  # ignores info.num_classes
    return nn.Sequential(nn.Flatten(), nn.Linear(192, 3))


def exits(info):
    raise SystemExit(3)


def exit_data():
    raise SystemExit(3)
"""


def issue_24_inputs(root: Path) -> None:
    """The last bad inputs of issue 24: damaged or code-carrying weights, empty class folders
    and splits, configs and arrays of the wrong shape, user code that exits."""
    import torch
    from torch import nn

    write_module(root, "plain", PLAIN)
    torch.manual_seed(0)
    state = nn.Sequential(nn.Flatten(), nn.Linear(192, 256), nn.Linear(256, 2)).state_dict()
    torch.save(state, root / "good.pth")
    data = bytearray((root / "good.pth").read_bytes())
    middle = len(data) // 3  # inside the weights' bytes: the zip still opens, a CRC fails
    data[middle : middle + 4096] = bytes(b ^ 0xFF for b in data[middle : middle + 4096])
    (root / "flipped.pth").write_bytes(bytes(data))
    torch.save({**state, "hook": print}, root / "code.pth")  # a pickled global: refused
    torch.save({k: v.to(torch.int64) for k, v in state.items()}, root / "ints.pth")
    image_folders(root / "emptycls", classes=3)
    for png in (root / "emptycls" / "train" / "class_2").iterdir():
        png.unlink()
    image_folders(root / "missingcls", classes=3)
    shutil.rmtree(root / "missingcls" / "test" / "class_1")
    (root / "list.json").write_text("[1, 2]")
    (root / "text.json").write_text('"vit"')
    np.savez(root / "empty.npz", x=np.zeros((0, 3, 8, 8), np.float32), y=np.zeros(0, np.int64))
    (root / "garbage.npz").write_bytes(b"\x80\x04garbage, not an archive" * 8)


# Torch-Pruning traces it, but a buffer it does not know fixes the width: cut channels, and
# the forward breaks. Refused by the probe prune before pretraining.
UNCUTTABLE = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, channels, classes):
        super().__init__()
        self.conv = nn.Conv2d(channels, 8, 3, padding=1)
        self.fc = nn.Linear(8, classes)
        self.register_buffer("shift", torch.zeros(8))

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)) + self.shift)


def build(info):
    return Net(info.in_channels, info.num_classes)
"""


CASES = [
    (
        ["model.name=torchvision:mobilenet_v4"],
        "torchvision has no classification model 'mobilenet_v4' (did you mean 'mobilenet_v2'?)",
    ),
    (["model.name=timm:resnet_18"], "timm has no classification model 'resnet_18' (did you mean"),
    (["model.name=mobilenet_v2"], "unknown model 'mobilenet_v2'"),
    (["model.name=python:nothere.py:build"], "file 'nothere.py' does not exist"),
    (
        ["model.name=python:broken.py:build"],
        "importing 'broken.py' failed: ModuleNotFoundError: No module named 'no_such_package_xyz'",
    ),
    (
        ["model.name=python:no_such_module_xyz:build"],
        "cannot import module 'no_such_module_xyz' (No module named 'no_such_module_xyz'); put "
        "the directory that holds it on PYTHONPATH",
    ),
    (["model.name=python:mymodel.py:buld"], "has no attribute 'buld' (did you mean 'build'?)"),
    (
        ["model.name=python:mymodel.py:not_a_module"],
        "the builder returned str, not a torch.nn.Module",
    ),
    (["model.name=hf"], "model.name=hf needs model.weights"),
    (
        ["data.name=image_folder", "data.root=one"],
        "holds 1 class folder of images ('class_0'); classification needs at least two",
    ),
    (["data.root=null"], "dataset 'image_folder' needs data.root"),
    (["data.name=python:mydata.py:make"], "file 'mydata.py' does not exist"),
    (["data.name=imgfolder"], "unknown dataset 'imgfolder'"),
    (
        ["data.root=garbled"],
        "data: 'garbled/train/class_1/x.png' is not a readable image (UnidentifiedImageError",
    ),
    (["data.root=truncated"], "data: 'truncated/test/class_0/0.png' is not a readable image"),
    (
        ["model.name=python:uncuttable.py:build", "prune.structure=structured"],
        "model 'python:uncuttable.py:build' no longer runs after pruning (RuntimeError",
    ),
    # issue 24
    (
        ["model.name=python:plain.py:build", "model.weights=flipped.pth"],
        "weights file 'flipped.pth' is damaged: 'good/data/",
    ),
    (
        ["model.name=python:plain.py:build", "model.weights=code.pth"],
        "cannot read 'code.pth' as a weights-only state dict (Unsupported global",
    ),
    (
        ["model.name=python:plain.py:build", "model.weights=ints.pth"],
        "'1.weight' holds torch.int64 values, the model expects torch.float32",
    ),
    (["data.root=emptycls"], "class folder 'emptycls/train/class_2' holds no images"),
    (["data.root=missingcls"], "test/ lacks class folder 'class_1' that train/ has"),
    (
        ["model.name=python:plain.py:narrow"],
        "gives 3 outputs per example but the data has 2 classes",
    ),
    (
        ["model.name=python:plain.py:exits"],
        "model 'python:plain.py:exits' exited (SystemExit: 3) instead of building",
    ),
    (["data.name=python:plain.py:exit_data"], "exited (SystemExit: 3) instead of returning"),
    (
        ["model.name=hf", "model.options={config: list.json}"],
        "model.name=hf: 'list.json' holds a JSON list, not a config",
    ),
    (
        ["model.name=hf", "model.options={config: text.json}"],
        "model.name=hf: 'text.json' holds a JSON str, not a config",
    ),
    (
        ["data.name=arrays", "data.root=empty.npz", "model.name=python:plain.py:build"],
        "holds an empty array (shape (0, 3, 8, 8))",
    ),
    (
        ["data.name=arrays", "data.root=garbage.npz", "model.name=python:plain.py:build"],
        "'garbage.npz' cannot be read as plain NumPy arrays",
    ),
]


@pytest.mark.parametrize(("overrides", "fragment"), CASES)
def test_bad_source_is_one_line_exit_2_nothing_written(invoke, own, overrides, fragment):
    results = own / "results"
    args = ["run", str(DIGITS), "--results", str(results), "--quiet", "--set", "device=cpu"]
    args += ["--set", "data.name=image_folder", "--set", "data.root=imgs"]
    for override in overrides:
        args += ["--set", override]
    code, _out, err = invoke(*args)
    assert code == 2, err
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert not results.exists()
    assert not any(w in err for w in ("weights_only", "allow_pickle", "pickle.load", "unsafe"))
