"""Results written by an earlier version (tests/data/legacy: prunebench 0.1.0) resume and are
reused; a config that differs in any result-shaping value is not matched to them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

import prunebench
import prunebench.config.identity as config_module
from prunebench.config.adaptive_rule import RULE_VERSION
from prunebench.config.identity import run_id
from prunebench.config.loading import load_run_config
from prunebench.config.sweep_grid import load_sweep
from prunebench.engine.plan import build_plan
from prunebench.store.database import Store
from prunebench.store.results import load_results

LEGACY = Path(__file__).parents[1] / "data" / "legacy"
SWEEP = LEGACY / "sweep.yaml"
# Columns that the upgrade renames (keys) or that record when a row was written.
RENAMED = ["step_key", "base_id"]


@pytest.fixture
def legacy(tmp_path) -> Path:
    root = tmp_path / "results"
    shutil.copytree(LEGACY / "results", root)
    return root


def rows(root: Path) -> pd.DataFrame:
    df = load_results(root).drop(columns=RENAMED)
    return df.sort_values(["run_id", "step"]).reset_index(drop=True)


def test_current_run_ids_equal_the_stored_ones(legacy):
    """A new config field must keep its earlier-version value out of the id (ADDED_FIELDS)."""
    _, configs, _ = load_sweep(SWEEP)
    stored = set(Store(legacy).frame("runs")["run_id"])  # a copy: opening migrates the file
    assert {run_id(cfg) for cfg in configs} == stored


def test_a_legacy_sweep_resumes_without_computing_anything(legacy, invoke):
    before = rows(legacy)
    code, out, _ = invoke("sweep", str(SWEEP), "-r", str(legacy), "--quiet")
    assert code == 0
    assert "0 steps computed" in out and "3 already done" in out
    pd.testing.assert_frame_equal(rows(legacy), before)
    _, configs, _ = load_sweep(SWEEP)
    plan = build_plan(configs)
    store = Store(legacy)
    assert set(store.stored_steps()) == set(plan.nodes)  # renamed rows, with their checkpoints
    assert not list((legacy / "checkpoints").glob("*.tmp"))
    assert {p.stem for p in (legacy / "checkpoints").glob("*.safetensors")} == set(plan.nodes)
    assert {p.stem for p in (legacy / "dense").glob("*.safetensors")} == {
        config_module.base_id(configs[0])
    }


def test_a_legacy_run_is_reused_by_a_new_run_sharing_its_steps(legacy, invoke):
    """The one-shot run to 0.8 is stored; a hybrid whose first step is 0.8 reuses it."""
    args = ["--set", "regime={name: hybrid, first: 0.8, steps: 1, target: 0.9}"]
    code, out, _ = invoke("sweep", str(SWEEP), "-r", str(legacy), "--quiet", *args)
    assert code == 0, out
    df = load_results(legacy)
    hybrid = df[df["regime"] == "hybrid"]
    first = hybrid[hybrid["step"] == 1].set_index("structure")
    assert first.loc["unstructured", "reused"] == 1  # the legacy one-shot step to 0.8
    assert first.loc["structured", "reused"] == 0  # no legacy structured step went to 0.8 at once
    one_shot = df[(df["regime"] == "one_shot") & (df["step"] == 1)].iloc[0]
    assert first.loc["unstructured", "test_top1"] == one_shot["test_top1"]


def test_a_changed_value_is_not_matched_to_legacy_results(legacy, invoke):
    code, out, _ = invoke(
        "sweep", str(SWEEP), "-r", str(legacy), "--quiet", "--set", "finetune.epochs=2"
    )
    assert code == 0
    assert "5 steps computed" in out and "0 already done" in out


def test_a_legacy_step_exports_and_reloads(legacy, tmp_path, invoke):
    invoke("sweep", str(SWEEP), "-r", str(legacy), "--quiet")  # upgrades the keys
    df = load_results(legacy)
    structured = df[df["structure"] == "structured"].iloc[-1]
    code, _, err = invoke(
        "export", str(legacy), str(tmp_path / "out"), "--run", structured["run_id"]
    )
    assert code == 0, err
    model = prunebench.load_pruned(tmp_path / "out")
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_added_fields_at_their_earlier_value_leave_ids_unchanged(monkeypatch):
    """Simulates a version without `finetune.min_delta`, then its addition with default 0.0."""
    cfg = load_run_config(None, [])
    earlier = config_module.identity(cfg)
    del earlier["finetune"]["min_delta"]  # what the earlier version hashed
    earlier_id = config_module.digest(earlier)
    assert run_id(cfg) != earlier_id
    added = {**config_module.ADDED_FIELDS, "finetune.min_delta": 0.0}
    monkeypatch.setattr(config_module, "ADDED_FIELDS", added)
    assert run_id(cfg) == earlier_id
    assert run_id(load_run_config(None, ["finetune.min_delta=0.01"])) != earlier_id


def test_an_adaptive_run_id_carries_its_rule_version_and_no_other_does(monkeypatch):
    """A rule that chooses other steps for the same measurements must not reuse the stored runs
    of the rule before it; fixed regimes' ids do not depend on it."""
    adaptive = load_run_config(None, ["regime={name: adaptive, target: 0.9}"])
    fixed = load_run_config(None, [])
    ids = run_id(adaptive), run_id(fixed)
    assert config_module.identity(adaptive)["regime"]["rule_version"] == RULE_VERSION
    assert "rule_version" not in config_module.identity(fixed)["regime"]
    monkeypatch.setattr(config_module, "RULE_VERSION", RULE_VERSION + 1)
    assert run_id(adaptive) != ids[0] and run_id(fixed) == ids[1]


def test_an_adaptive_run_of_an_earlier_rule_reads_as_outdated_and_leaves_the_report(
    tmp_path, tiny, monkeypatch
):
    """The database keeps the earlier rule's run, but tables show it as `outdated` with the
    reason and the report leaves it out: its steps are not what this rule chooses."""
    from prunebench.engine.single_run import run as run_one
    from prunebench.report.build import build_document
    from prunebench.store.results import OUTDATED, load_results

    cfg = tiny("regime={name: adaptive, target: 0.5}", "finetune.max_epochs=2")
    fixed = tiny("regime={name: one_shot, target: 0.5}", "finetune.max_epochs=2")
    for c in (cfg, fixed):
        run_one(c, Store(tmp_path))
    assert set(load_results(tmp_path)["status"]) == {"done"}
    monkeypatch.setattr(config_module, "RULE_VERSION", RULE_VERSION + 1)  # a newer rule
    df = load_results(tmp_path)
    adaptive = df[df["regime"] == "adaptive"]
    assert set(adaptive["status"]) == {OUTDATED} and len(adaptive) >= 1
    assert adaptive["error"].str.contains("earlier version of the adaptive rule").all()
    assert set(df[df["regime"] == "one_shot"]["status"]) == {"done"}
    text = "\n".join(str(s) for s in build_document(df, "db").sections)
    assert "1 outdated" in build_document(df, "db").intro[0]
    assert "earlier version of the adaptive rule" in text
