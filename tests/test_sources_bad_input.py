"""Bad model and dataset sources: one line, exit code 2, nothing written, before any compute."""

from __future__ import annotations

from pathlib import Path

import pytest

from own_data import MODEL_FILE, image_folders, write_folder, write_module

DIGITS = Path(__file__).parents[1] / "configs" / "digits.yaml"


@pytest.fixture
def own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, "mymodel", MODEL_FILE)
    write_module(tmp_path, "broken", "import no_such_package_xyz\n")
    image_folders(tmp_path / "imgs", classes=2)
    write_folder(tmp_path / "one", classes=1, per_class=4)
    return tmp_path


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
]


@pytest.mark.parametrize(("overrides", "fragment"), CASES)
def test_bad_source_is_one_line_exit_2_nothing_written(invoke, own, overrides, fragment):
    results = own / "results"
    args = ["run", str(DIGITS), "--results", str(results), "--quiet", "--set", "device=cpu"]
    args += ["--set", "data.name=image_folder", "--set", f"data.root={own / 'imgs'}"]
    for override in overrides:
        args += ["--set", override]
    code, _out, err = invoke(*args)
    assert code == 2, err
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert not results.exists()
