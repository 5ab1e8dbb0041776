"""Bad input: one clear line, exit code 2, nothing written, no compute."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

CASES = [
    # (extra --set overrides, expected fragment of the message)
    (["finetune.patiense=3"], "unknown key 'finetune.patiense' (did you mean 'patience'?)"),
    (["finetune.patience=abc"], "finetune.patience: Input should be a valid integer"),
    (["regime.target=1.5"], "target must be in (0, 1), got 1.5"),
    (["regime.target=-0.1"], "target must be in (0, 1)"),
    (["model.name=digits_cnm"], "unknown model 'digits_cnm' (did you mean 'digits_cnn'?)"),
    (["prune.criterion=magnitud"], "unknown criterion 'magnitud' (did you mean 'magnitude'?)"),
    (["regime.name=geometirc"], "unknown regime 'geometirc' (did you mean 'geometric'?)"),
    (["data.name=digit"], "unknown dataset 'digit' (did you mean 'digits'?)"),
    (["data.root=/no/such/dir"], "data.root: path '/no/such/dir' does not exist"),
    (["model.weights=/no/such.safetensors"], "weights file '/no/such.safetensors' does not exist"),
    (
        ["regime.name=one_shot", "regime.steps=3"],
        "one_shot does not take rate, steps (it takes target)",
    ),
    (["regime.name=hybrid", "regime.first=0.9", "regime.target=0.8"], "must be below the target"),
    (["prune.structure=sparse"], "prune.structure: Input should be 'unstructured' or 'structured'"),
    (["finetune.min_delta=-1"], "finetune.min_delta: Input should be greater than or equal to 0"),
    (["data.val_fraction=0.7"], "data.val_fraction: Input should be less than 0.5"),
    (["nonsense"], "--set expects key=value"),
    (["prune.exclude=[nosuchlayer]"], "prune.exclude: no module named 'nosuchlayer'"),
]


@pytest.mark.parametrize(("overrides", "fragment"), CASES)
def test_bad_config_is_one_line_exit_2_nothing_written(invoke, tmp_path, overrides, fragment):
    results = tmp_path / "results"
    args = ["run", "configs/digits.yaml", "--results", str(results), "--quiet"]
    for override in overrides:
        args += ["--set", override]
    code, _out, err = invoke(*args)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert not results.exists()


def test_missing_config_file(invoke, tmp_path):
    code, _, err = invoke("run", str(tmp_path / "nope.yaml"))
    assert code == 2 and "does not exist" in err


def test_invalid_yaml(invoke, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("regime: {name: one_shot\n")
    code, _, err = invoke("run", str(bad), "--results", str(tmp_path / "r"))
    assert code == 2 and "is not valid YAML" in err
    assert not (tmp_path / "r").exists()


def test_checkpoint_that_does_not_fit_the_model(invoke, tmp_path):
    weights = tmp_path / "wrong.safetensors"
    save_file({"features.0.weight": torch.zeros(5, 1, 3, 3)}, str(weights))
    results = tmp_path / "results"
    code, _, err = invoke(
        "run",
        "configs/digits.yaml",
        "--results",
        str(results),
        "--quiet",
        "--set",
        f"model.weights={weights}",
        "--set",
        "device=cpu",
    )
    assert code == 2
    assert "'features.0.weight' has shape (5, 1, 3, 3), the model expects (32, 1, 3, 3)" in err
    assert not results.exists()


def test_pickled_checkpoint_is_refused(invoke, tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    weights = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, weights)
    results = tmp_path / "results"
    code, out, err = invoke(
        "run",
        "configs/digits.yaml",
        "--results",
        str(results),
        "--quiet",
        "--set",
        f"model.weights={weights}",
    )
    assert code == 2
    assert "weights-only state dict" in err
    assert "pwned" not in out
    assert not results.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["schedule", "geometric", "--target", "1.2", "--steps", "3"], "target must be in (0, 1)"),
        (["schedule", "hybrid", "--target", "0.8", "--rate", "0.1"], "hybrid needs first"),
        (["schedule", "constant", "--target", "0.8"], "exactly one of steps or step"),
        (["results", "/no/such/results"], "holds no results.sqlite"),
    ],
)
def test_cli_argument_errors(invoke, args, fragment):
    code, _, err = invoke(*args)
    assert code == 2
    assert fragment in err
