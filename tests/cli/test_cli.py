"""The command line: schedule output, pretrain reuse, run + results formats, progress, library."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
import torch


def test_schedule_json_has_cumulative_and_increments(invoke):
    code, out, _ = invoke("schedule", "geometric", "--target", "0.75", "--steps", "2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["cumulative"] == [0.5, 0.75]
    assert data["increments"] == [0.5, 0.25]


def test_schedule_table_lists_every_step(invoke):
    code, out, _ = invoke(
        "schedule", "hybrid", "--target", "0.7", "--first", "0.5", "--rate", "0.01842"
    )
    assert code == 0
    assert "hybrid: 13 steps" in out
    assert "0.700000" in out and "0.518420" in out


def test_schedule_json_is_rounded_to_12_significant_digits(invoke):
    code, out, _ = invoke("schedule", "geometric", "--target", "0.9", "--rate", "0.2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["cumulative"][:3] == [0.2, 0.36, 0.488] and data["cumulative"][-1] == 0.9
    assert data["increments"][:2] == [0.2, 0.16]
    assert all(v == float(f"{v:.12g}") for v in data["cumulative"] + data["increments"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["geometric", "--target", "0.9"],
            "schedule: geometric needs exactly one of steps or rate",
        ),
        (
            ["nope", "--target", "0.5"],
            "schedule: REGIME: unknown regime 'nope' (known: adaptive, agp, ",
        ),
        (["geometric", "--target", "1.5", "--rate", "0.1"], "schedule: target must be in (0, 1)"),
    ],
)
def test_schedule_errors_name_its_own_options_not_set(invoke, args, expected):
    code, out, err = invoke("schedule", *args)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {expected}")
    assert "--set" not in line and "(top level)" not in line and "in the file" not in line


@pytest.mark.parametrize(
    "command", [[], ["schedule"], ["run"], ["sweep"], ["results"], ["report"], ["export"]]
)
def test_help_shows_no_type_for_boolean_flags(invoke, command):
    code, out, _ = invoke(*command, "--help")
    assert code == 0 and "--help" in out
    assert "<bool>" not in out


def test_schedule_manual_targets(invoke):
    code, out, _ = invoke("schedule", "manual", "--targets", "0.2,0.5,0.9", "--json")
    assert code == 0
    assert json.loads(out)["cumulative"] == [0.2, 0.5, 0.9]


TINY_ARGS = [
    "--set", "model.options={width: 8}",
    "--set", "pretrain.epochs=2",
    "--set", "finetune.max_epochs=1",
    "--set", "device=cpu",
    "--quiet",
]  # fmt: skip


def test_pretrain_then_run_then_results(invoke, tmp_path):
    results = tmp_path / "res"
    code, out, _ = invoke("pretrain", "configs/digits.yaml", "--results", str(results), *TINY_ARGS)
    assert code == 0 and "(trained)" in out
    code, out, _ = invoke("pretrain", "configs/digits.yaml", "--results", str(results), *TINY_ARGS)
    assert code == 0 and "(reused)" in out

    args = ["configs/digits.yaml", "--results", str(results), *TINY_ARGS]
    args += ["--set", "regime={name: constant, steps: 2, target: 0.6}", "--seed", "3"]
    code, out, _ = invoke("run", *args)
    assert code == 0 and "pruning steps" in out
    code, out, _ = invoke("run", *args)
    assert code == 0 and "already complete" in out

    code, out, _ = invoke("results", str(results), "--format", "csv")
    assert code == 0
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame["step"]) == [1, 2]
    assert list(frame["target"]) == [0.3, 0.6]
    assert set(frame["seed"]) == {3}
    assert set(frame["regime"]) == {"constant"}

    code, out, _ = invoke("results", str(results), "--format", "json")
    rows = json.loads(out)
    assert [r["target"] for r in rows] == [0.3, 0.6]

    code, _, err = invoke("results", str(results), "--format", "xml")
    assert code == 2 and "--format must be" in err


def test_library_exports_each_do_their_job(tmp_path, tiny):
    """Every name in prunebench.__all__, used once the way the README uses it."""
    import prunebench as pb
    from prunebench.data import DataInfo
    from prunebench.data.base import DataBundle
    from prunebench.export.pruned import export_step
    from prunebench.models import MODELS
    from prunebench.models.small import build_small_cnn
    from prunebench.tasks import Classification

    assert set(pb.__all__) == {
        "schedules", "load_run_config", "RunConfig", "run", "Store", "load_results",
        "UnstructuredPruner", "StructuredPruner", "load_pruned", "MaskSet", "select_prunable",
        "make_pruner", "make_criterion", "EarlyStopping", "FitSettings", "fit",
    }  # fmt: skip
    assert pb.schedules.geometric(0.75, steps=2) == [0.5, 0.75]
    cfg = pb.load_run_config(None, ["regime.target=0.7"])
    assert isinstance(cfg, pb.RunConfig) and cfg.regime.final_target == 0.7

    cfg = tiny("regime.steps=1", "finetune.max_epochs=1")
    result = pb.run(cfg, pb.Store(tmp_path / "r"))
    assert result.status == "done" and len(result.rows) == 1
    df = pb.load_results(tmp_path / "r")
    assert list(df["run_id"].unique()) == [result.run_id]
    assert df["test_top1"].iloc[0] == result.rows[0]["test_top1"]
    export_step(tmp_path / "r", result.run_id, None, tmp_path / "out")
    assert pb.load_pruned(tmp_path / "out")(torch.zeros(1, 1, 8, 8)).shape == (1, 10)

    info = DataInfo("classification", 10, 1, 8)
    model = build_small_cnn(info, width=4)
    prunable = pb.select_prunable(model, cfg.prune)
    assert pb.MaskSet(model, prunable.names).pruned_count() == 0
    pruner = pb.UnstructuredPruner(model, prunable, pb.make_criterion("magnitude"))
    pruner.prune_to(model, 0.5)
    assert pruner.measure(model)["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert pruner.masks.pruned_count() == pruner.measure(model)["prunable_total"] // 2

    structured_cfg = cfg.prune.model_copy(update={"structure": "structured", "scope": "layerwise"})
    model = build_small_cnn(info, width=4)
    made = pb.make_pruner(structured_cfg, model, MODELS.get("digits_cnn"), info)
    assert isinstance(made, pb.StructuredPruner)
    made.prune_to(model, 0.5)
    assert made.measure(model)["achieved_sparsity"] == pytest.approx(0.5, abs=0.1)

    stopper = pb.EarlyStopping(patience=1)
    assert stopper.update(1.0) == (True, False) and stopper.update(2.0) == (False, True)
    settings = pb.FitSettings("sgd", 0.01, 0.9, 0.0, max_epochs=1, patience=None)
    batches = [(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,)))]
    bundle = DataBundle(info, batches, batches, batches, batches, {"train": 8, "val": 8, "test": 8})
    fitted = pb.fit(model, bundle, Classification(), settings, torch.device("cpu"))
    assert fitted.epochs == 1 and fitted.best_epoch == 1


def test_library_use_in_a_hand_written_training_loop():
    """The README's library example: our schedule and pruner inside someone else's loop."""
    import torch
    from torch.nn import functional as F

    from prunebench import UnstructuredPruner, schedules
    from prunebench.data import DataInfo
    from prunebench.models.small import build_small_cnn

    torch.manual_seed(0)
    model = build_small_cnn(DataInfo("classification", 10, 1, 8), width=4)
    pruner = UnstructuredPruner.for_model(model, criterion="magnitude", exclude_classifier=True)
    assert "classifier.weight" not in pruner.prunable.names
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    for target in schedules.geometric(0.9, steps=3):
        pruner.prune_to(model, target)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            pruner.masks.mask_grads()
            optimizer.step()
            pruner.masks.apply()
        measured = pruner.measure(model)
        pruned = measured["prunable_total"] - measured["prunable_nonzero"]
        assert abs(pruned - target * measured["prunable_total"]) <= 0.5
