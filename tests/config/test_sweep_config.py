"""Sweep files: cases x grid, order of overrides, readable run names, errors before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prunebench.config.sweep_grid import load_sweep, regime_label
from prunebench.errors import ConfigError

BASE = {
    "set": {"name": None, "device": "cpu", "model.options": {"width": 8}},
}


def write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**BASE, **body}))
    return path


def test_cases_cross_the_grid_and_get_readable_names(tmp_path):
    path = write(
        tmp_path,
        {
            "cases": [
                {"regime": {"name": "one_shot"}, "finetune.patience": 6},
                {"regime": {"name": "hybrid", "first": 0.5, "rate": 0.04365}},
            ],
            "grid": {
                "regime.target": [0.7, 0.9],
                "prune.criterion": ["magnitude", "random"],
                "seed": [0, 1],
            },
        },
    )
    _, configs, skipped = load_sweep(path)
    assert not skipped and len(configs) == 2 * 2 * 2 * 2
    names = sorted({c.name for c in configs})
    assert names == [
        "hybrid p_k=0.5 q=0.04365 criterion=magnitude",
        "hybrid p_k=0.5 q=0.04365 criterion=random",
        "one-shot criterion=magnitude",
        "one-shot criterion=random",
    ]
    one_shot = [c for c in configs if c.regime.name == "one_shot"]
    assert {c.finetune.patience for c in one_shot} == {6}
    assert {c.regime.target for c in one_shot} == {0.7, 0.9}  # deeper grid keys after the case
    assert {c.seed for c in configs} == {0, 1}


def test_command_line_set_is_the_last_word_and_merges_equal_points(tmp_path):
    path = write(tmp_path, {"grid": {"regime.target": [0.7, 0.9], "seed": [0, 1, 2]}})
    _, configs, _ = load_sweep(path, ["seed=0", "finetune.max_epochs=2"])
    assert [(c.seed, c.regime.target) for c in configs] == [(0, 0.7), (0, 0.9)]
    assert {c.finetune.max_epochs for c in configs} == {2}


def test_name_templates_are_filled_from_the_run_config(tmp_path):
    path = write(
        tmp_path,
        {
            "cases": [
                {
                    "name": "one-shot {finetune.epochs} ep",
                    "finetune.epochs": e,
                    "regime": {"name": "one_shot", "target": 0.8},
                }
                for e in (2, 4)
            ]
        },
    )
    _, configs, _ = load_sweep(path)
    assert [c.name for c in configs] == ["one-shot 2 ep", "one-shot 4 ep"]
    bad = write(tmp_path, {"set": {**BASE["set"], "name": "x {finetune.epochz}"}})
    with pytest.raises(ConfigError, match=r"unknown key 'finetune.epochz'"):
        load_sweep(bad)


def test_two_different_runs_with_one_name_are_refused(tmp_path):
    path = write(
        tmp_path,
        {"cases": [{"name": "same", "finetune.patience": p} for p in (1, 2)]},
    )
    with pytest.raises(ConfigError, match="both named 'same'"):
        load_sweep(path)


def test_regime_labels_use_the_papers_notation(tiny):
    assert regime_label(tiny("regime.name=one_shot", "regime.steps=null").regime) == "one-shot"
    hybrid = tiny(
        "regime.name=hybrid",
        "regime.steps=null",
        "regime.first=0.5",
        "regime.rate=0.04365",
        "regime.target=0.7",
    )
    assert regime_label(hybrid.regime) == "hybrid p_k=0.5 q=0.04365"
    assert regime_label(tiny().regime) == "geometric steps=2"


def test_bad_sweep_input_fails_with_exit_2_and_writes_nothing(tmp_path, cli):
    path = write(tmp_path, {"cases": [{"regime": {"name": "geometric"}}], "grid": {"seed": [0]}})
    results = tmp_path / "results"
    proc = cli("sweep", str(path), "--results", str(results))
    assert proc.returncode == 2
    assert "geometric needs target" in proc.stderr and "Traceback" not in proc.stderr
    assert not results.exists()
    good = write(tmp_path, {"grid": {"seed": [0]}})
    proc = cli("sweep", str(good), "--results", str(results), "--executor", "dask")
    assert proc.returncode == 2 and "--executor must be local, processes or ray" in proc.stderr
    assert not results.exists()


@pytest.mark.slow
def test_dry_run_prints_the_tree_and_counts_and_writes_nothing(tmp_path, cli):
    path = write(
        tmp_path,
        {
            "set": {**BASE["set"], "regime": {"name": "geometric", "rate": 0.2}},
            "grid": {"regime.target": [0.7, 0.8, 0.88, 0.92, 0.96, 0.99]},
        },
    )
    results = tmp_path / "results"
    proc = cli("sweep", str(path), "--results", str(results), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "fine-tuning steps: naive 72, planned 26 (ratio 0.361)" in proc.stdout
    assert "steps 15-21 (7): 0.9648 -> 0.9900" in proc.stdout
    assert not results.exists()
