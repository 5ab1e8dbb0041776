"""End to end on the bundled digits default: every regime and every criterion, structured, and
the data-dependent criteria unstructured; rows hold measured (not scheduled) figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunebench.engine.single_run import run
from prunebench.pruning.masks import count_to_prune
from prunebench.store.database import Store

CONFIG = Path(__file__).parents[2] / "configs" / "digits.yaml"
# digits_cnn at width 8: channel groups of 8, 16 and 32 channels
GROUPS = (8, 16, 32)
FAST = [
    "pretrain.epochs=3",
    "finetune.max_epochs=1",
    "prune.structure=structured",
    "prune.scope=layerwise",
    "prune.latency=false",
    "prune.calibration_samples=48",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("structured-runs"))


def kept_channels(target: float) -> int:
    return sum(c - count_to_prune(target, c) for c in GROUPS)


def macs(c0: int, c1: int, c2: int) -> int:
    return 64 * c0 * 9 + 64 * c1 * c0 * 9 + 16 * c2 * c1 * 9 + c2 * 10


REGIMES = {
    "one_shot": ["regime.name=one_shot", "regime.target=0.6", "regime.steps=null"],
    "constant": ["regime.name=constant", "regime.target=0.6", "regime.steps=2"],
    "geometric": ["regime.name=geometric", "regime.target=0.6", "regime.steps=2"],
    "hybrid": ["regime.name=hybrid", "regime.target=0.8", "regime.first=0.6", "regime.steps=1"],
}


@pytest.mark.parametrize("regime", list(REGIMES))
def test_every_regime_runs_structured(tiny, store, regime):
    cfg = tiny(*FAST, *REGIMES[regime])
    if regime == "hybrid":  # the one_shot run first (in any order, on any xdist worker)
        run(tiny(*FAST, *REGIMES["one_shot"]), store)
    result = run(cfg, store)
    targets = cfg.regime.schedule()
    assert result.status == "done" and [r["target"] for r in result.rows] == targets
    for row, target in zip(result.rows, targets, strict=True):
        keep = [c - count_to_prune(target, c) for c in GROUPS]
        assert row["prunable_total"] == sum(GROUPS)
        assert row["prunable_nonzero"] == sum(keep)
        assert row["achieved_sparsity"] == pytest.approx(1 - sum(keep) / sum(GROUPS))
        assert row["macs_dense"] == macs(*GROUPS) and row["macs_pruned"] == macs(*keep)
        assert row["speedup"] == pytest.approx(macs(*GROUPS) / macs(*keep))
        assert row["compression_ratio"] > 1 and row["params_total"] < 23_000
        assert row["latency_ms"] is None  # turned off for speed here
        assert 0 <= row["test_top1"] <= 1 and row["epochs"] == 1
    if regime == "hybrid":  # its one-shot step is the one_shot run's step (same key)
        assert result.rows[0]["reused"] == 1


@pytest.mark.parametrize("criterion", ["magnitude_l2", "taylor", "hessian", "random"])
def test_every_criterion_runs_structured(tiny, store, criterion):
    cfg = tiny(*FAST, *REGIMES["one_shot"], f"prune.criterion={criterion}")
    (row,) = run(cfg, store).rows
    assert row["prunable_nonzero"] == kept_channels(0.6)
    needs_data = criterion in ("taylor", "hessian")
    assert row["calibration_samples"] == (48 if needs_data else None)


@pytest.mark.parametrize("criterion", ["taylor", "hessian", "wanda"])
def test_data_dependent_criteria_run_unstructured(tiny, store, criterion):
    cfg = tiny(
        "pretrain.epochs=3",
        "finetune.max_epochs=1",
        "prune.calibration_samples=48",
        *REGIMES["one_shot"],
        f"prune.criterion={criterion}",
    )
    (row,) = run(cfg, store).rows
    assert row["achieved_sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert row["macs_pruned"] < row["macs_dense"] and row["speedup"] > 1
    assert row["calibration_samples"] == 48


def test_structured_latency_is_measured_next_to_the_dense_model(tiny, store, monkeypatch):
    """The row's two latencies time the step's pruned model and the run's dense model: two
    different modules, with the pruned and the dense parameter counts."""
    from prunebench import measure

    monkeypatch.setattr(measure, "LATENCY_ROUNDS", 1)
    monkeypatch.setattr(measure, "LATENCY_MIN_TIME", 0.01)
    timed = []
    real = measure.compare_latency

    def spy(models, inputs, **kwargs):
        params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
        timed.append((models["pruned"] is not models["dense"], params, inputs.shape[0]))
        return real(models, inputs, **kwargs)

    monkeypatch.setattr(measure, "compare_latency", spy)
    fast = [s for s in FAST if s != "prune.latency=false"]
    cfg = tiny(*fast, *REGIMES["one_shot"], "prune.latency_batch_size=8")
    (row,) = run(cfg, store).rows
    assert row["latency_ms"] > 0 and row["dense_latency_ms"] > 0
    ((distinct, params, batch),) = timed
    assert distinct and batch == 8
    assert params == {
        "pruned": row["params_total"],
        "dense": store.run(row["run_id"])["dense_params"],
    }
    assert params["pruned"] < params["dense"]


def test_bad_structured_settings_exit_2_before_any_compute(invoke, tmp_path):
    code, _, err = invoke(
        "run",
        str(CONFIG),
        "--results",
        str(tmp_path / "r"),
        "--set",
        "prune.structure=structured",
        "--set",
        "prune.criterion=wanda",
    )
    assert code == 2
    assert "wanda" in err and "prune.structure=unstructured" in err
    assert not (tmp_path / "r").exists()
