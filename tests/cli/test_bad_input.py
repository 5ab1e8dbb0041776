"""Bad input: one clear line, exit code 2, nothing written, no compute."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from prunebench.store.database import Store
from report_db import add_run

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
    # seeds: numpy's RNGs take [0, 2^32), SQLite signed 64-bit integers
    (["pretrain.seed=-1"], "pretrain.seed: Input should be greater than or equal to 0"),
    (["data.split_seed=-1"], "data.split_seed: Input should be greater than or equal to 0"),
    ([f"seed={2**63}"], "seed: Input should be less than or equal to 4294967295"),
    ([f"pretrain.seed={2**64}"], "pretrain.seed: Input should be less than or equal to"),
    # strict numbers: a quoted number is a string, not a number
    (['regime.target="0.5"'], "regime.target: Input should be a valid number (got '0.5')"),
    (["finetune.patience=2.0"], "finetune.patience: Input should be a valid integer"),
    (["data.augment=1"], "data.augment: Input should be a valid boolean"),
    (["finetune.optimizer.lr=.nan"], "finetune.optimizer.lr: Input should be a finite number"),
    (["data.options.bogus=1"], "data.options.bogus is not an option of dataset 'digits'"),
    (["name=2020-01-01"], "name is a date (2020-01-01), not a config value; quote it"),
    ([f"data.root=/tmp/{'x' * 300}"], "data.root: the path is not usable (File name too long)"),
    ([f"model.weights=/{'w' * 300}"], "model.weights: the path is not usable"),
    # model options are checked by building the model, before anything is trained
    (["model.options.bogus=1"], "model.options for 'digits_cnn' are not accepted"),
    (["model.options.width=0"], "model 'digits_cnn' does not build or run with model.options"),
]


@pytest.mark.parametrize(("overrides", "fragment"), CASES)
def test_bad_config_is_one_line_exit_2_nothing_written(invoke, tmp_path, overrides, fragment):
    results = tmp_path / "results"
    args = ["run", "configs/digits.yaml", "--results", str(results), "--quiet"]
    for override in overrides:
        args += ["--set", override]
    code, _out, err = invoke(*args)
    assert_one_line(code, err, fragment)
    assert not results.exists()


def assert_one_line(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert fragment in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def alias_bomb(levels: int = 9, width: int = 9) -> bytes:
    """`levels` anchors, each a list of `width` aliases of the previous one: 9^9 values."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * width) + "]")
    return "\n".join(lines).encode()


CONFIG_FILES = [
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage", "is not UTF-8 text"),
    ("seed: 1\n".encode("utf-16"), "is not UTF-8 text"),
    (nested(50_000), "is refused: it nests deeper than 64 levels"),
    (b"2020-01-01: 1\n", "key '2020-01-01' under '(top level)' is a date"),
    (b"data: {options: {on: 1}}\n", "key 'True' under 'data.options' is a bool"),
    (b"seed: 1\nseed: 2\n", "has the key 'seed' twice (line 2)"),
    (b"a: &a [*a]\n", "has an alias that refers to a node containing itself"),
    (b"regime: !!set {x}\n", "regime is a set, not a config value"),
    (b"seed: 0x_\n", "is not valid YAML: invalid literal"),
    (b"- 1\n- 2\n", "must hold a mapping of keys (e.g. seed: 0), not a list"),
    (alias_bomb(), "expands to more than 100,000 values through its aliases"),
]


@pytest.mark.parametrize(("content", "fragment"), CONFIG_FILES, ids=range(len(CONFIG_FILES)))
def test_bad_config_file_is_one_line(invoke, tmp_path, content, fragment):
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    started = time.perf_counter()
    code, _, err = invoke("run", str(config), "--results", str(tmp_path / "r"), "--quiet")
    assert_one_line(code, err, fragment)
    assert time.perf_counter() - started < 10  # the alias bomb took 50 s, then MemoryError
    assert not (tmp_path / "r").exists()


def test_config_that_is_a_directory_or_too_large(invoke, tmp_path):
    code, _, err = invoke("run", str(tmp_path), "--results", str(tmp_path / "r"))
    assert_one_line(code, err, "is a directory; give a YAML file")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (2 << 20) + b"\nseed: 0\n")
    code, _, err = invoke("sweep", str(big), "--results", str(tmp_path / "r"))
    assert_one_line(code, err, "a config is at most 1,048,576 bytes")
    assert not (tmp_path / "r").exists()
    if Path("/dev/zero").exists():  # endless, and stat gives it no size: read with a bound
        code, _, err = invoke("run", "/dev/zero", "--results", str(tmp_path / "r"))
        assert_one_line(code, err, "is longer than a config's 1,048,576 bytes")
        assert not (tmp_path / "r").exists()


def test_yaml_exponent_numbers_are_numbers(tiny):
    """YAML 1.1 reads 1e-3 as a string; strict number fields would then refuse it."""
    assert tiny("finetune.optimizer.lr=1e-3").finetune.optimizer.lr == 0.001
    assert tiny("finetune.optimizer.lr=2E+2").finetune.optimizer.lr == 200.0


def test_seed_option_out_of_range(invoke, tmp_path):
    code, _, err = invoke("run", "configs/digits.yaml", "-r", str(tmp_path / "r"), "--seed", "-1")
    assert_one_line(code, err, "seed: Input should be greater than or equal to 0")
    assert not (tmp_path / "r").exists()


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


def test_text_file_named_pth_is_one_line_without_unpickling_advice(invoke, tmp_path):
    weights = tmp_path / "model.pth"
    weights.write_text("these are not weights\nat all\n")
    results = tmp_path / "results"
    args = ["run", "configs/digits.yaml", "-r", str(results), "--set", f"model.weights={weights}"]
    code, _, err = invoke(*args)
    assert_one_line(code, err, "as a weights-only state dict")
    assert "weights_only=False" not in err and "trust" not in err
    assert not results.exists()


# ---------------------------------------------------------------- where commands write


@pytest.fixture
def stored(tmp_path):
    """A results directory with one finished run (rows written directly, no training)."""
    rid = add_run(Store(tmp_path / "stored"), "one_shot", 0.5, 0, 0.9)
    return tmp_path / "stored", rid


def in_the_way(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    return blocker


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (["run", "configs/digits.yaml", "--results", "{blocker}"], "is a file; give a directory"),
        (["run", "configs/digits.yaml", "-r", "{blocker}/sub"], "is under a file"),
        (["pretrain", "configs/digits.yaml", "-r", "{blocker}"], "is a file; give a directory"),
        (["sweep", "configs/sweeps/demo.yaml", "-r", "{blocker}"], "is a file; give a directory"),
        (["report", "{stored}", "--out", "{blocker}"], "--out '{blocker}' is a file"),
        (["export", "{stored}", "{blocker}", "--run", "{rid}"], "export directory '{blocker}'"),
        (["results", "{stored}", "-f", "csv", "-o", "/nonexistent/x.csv"], "does not exist"),
        (["results", "{stored}", "-f", "csv", "-o", "{stored}"], "is a directory"),
        (["results", "{stored}", "-o", "{tmp}/x.csv"], "add --format csv, json or parquet"),
    ],
)
def test_unwritable_output_is_refused_first(invoke, tmp_path, stored, command, fragment):
    blocker = in_the_way(tmp_path)
    names = {"blocker": blocker, "stored": stored[0], "rid": stored[1], "tmp": tmp_path}
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = invoke(*(part.format(**names) for part in command))
    assert_one_line(code, err, fragment.format(**names))
    assert blocker.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_results_on_a_read_only_file_system_fail_before_pretraining(tmp_path):
    """A read-only mount (private to one `unshare` process): refused at once, not after the
    20 s of pretraining it took before."""
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux unshare")
    mount = tmp_path / "ro"
    mount.mkdir()
    script = (
        f"mount -t tmpfs -o ro,size=1m tmpfs {mount} || exit 77; "
        f"exec {sys.executable} -m prunebench run configs/digits.yaml -r {mount}/results"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    if proc.returncode == 77 or "Operation not permitted" in proc.stderr:
        pytest.skip("cannot mount a read-only file system here")
    assert_one_line(proc.returncode, proc.stderr, "it is on a read-only file system")


def test_empty_database_is_an_error_not_an_empty_page(invoke, tmp_path):
    Store(tmp_path).frame("runs")  # creates results.sqlite with its tables, no runs
    for command in (["results", str(tmp_path)], ["report", str(tmp_path)]):
        code, _, err = invoke(*command)
        assert_one_line(code, err, "holds no runs yet")
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["schedule", "manual", "--targets", "0.5,abc"], "--targets: 'abc' is not a number"),
        (["schedule", "manual", "--targets", "0.5,,0.9"], "--targets: '' is not a number"),
        (["schedule", "manual", "--targets", "0.5,0.5"], "is not strictly increasing"),
        (["schedule", "geometric", "--target", "1e-17", "--steps", "2"], "is too small to split"),
        (["schedule", "constant", "--target", "5e-324", "--steps", "2"], "is too small to split"),
        (["schedule", "geometric", "--target", "0.9", "--steps", "0"], "steps must be an integer"),
        (["schedule", "geometric", "--target", "nan", "--steps", "2"], "a finite number"),
        (
            ["schedule", "geometric", "--target", "0.9", "--steps", "x"],
            "Invalid value for '--steps'",
        ),
        (["run", "configs/digits.yaml", "--bogus"], "No such option: --bogus"),
        (["sweep", "configs/sweeps/demo.yaml", "--workers", "0", "-x", "ray"], "--workers must be"),
        (["sweep", "configs/sweeps/demo.yaml", "--threads", "-2"], "--threads must be >= 1"),
        (
            ["sweep", "configs/sweeps/demo.yaml", "-x", "dask"],
            "--executor must be local, processes or",
        ),
        (
            ["sweep", "configs/sweeps/demo.yaml", "--workers", "2"],
            "--workers needs --executor processes",
        ),
        (["results", "{stored}", "-f", "xml"], "--format must be table, csv, json or parquet"),
        (["results", "{stored}", "--run", "nope"], "no run 'nope' in"),
        (["report", "{stored}", "--figures", "gif"], "--figures must be png or svg"),
        (["export", "{stored}", "{tmp}/out", "--run", "nope"], "no run 'nope' in"),
        (["export", "{stored}", "{tmp}/out", "--run", "{rid}", "--step", "0"], "not 0"),
        (["nonsense"], "No such command 'nonsense'"),
    ],
)
def test_every_cli_argument_is_checked(invoke, tmp_path, stored, args, fragment):
    names = {"stored": stored[0], "rid": stored[1], "tmp": tmp_path}
    code, _, err = invoke(*(part.format(**names) for part in args))
    assert_one_line(code, err, fragment)
    assert not (tmp_path / "out").exists() and not (stored[0] / "report").exists()
