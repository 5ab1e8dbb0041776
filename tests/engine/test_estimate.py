"""The time estimate: a few timed batches per model and data, times the plan's epochs."""

from __future__ import annotations

import math

import pytest
import torch

from own_data import DATASET_FILE, MODEL_FILE, write_module
from prunebench.data.digits import build_digits
from prunebench.engine import estimate as est_module
from prunebench.engine.estimate import EpochTime, Estimate, estimate, measure
from prunebench.engine.plan import build_plan
from prunebench.engine.single_run import run
from prunebench.progress import Progress, RichProgress
from prunebench.store.database import Store

CPU = torch.device("cpu")


def test_steps_side_by_side_follow_the_plan_tree():
    """a -> b (10 s each) and c (5 s): one slot runs them one after another; two slots run c
    beside a; three cannot start b before a ends."""
    est = Estimate(
        times={},
        pretrain=(3.0, 4.0),
        durations={"a": (10.0, 20.0), "b": (10.0, 20.0), "c": (5.0, 5.0)},
        parents={"a": "root", "b": "a", "c": "root"},
        priority={"a": 2, "b": 1, "c": 1},
    )
    assert est.side_by_side(1) == (28.0, 49.0)  # pretraining first, as the driver does
    assert est.side_by_side(2, with_pretraining=False) == (20.0, 40.0)
    assert est.side_by_side(3, with_pretraining=False) == (20.0, 40.0)


def test_a_plan_costs_its_epochs_times_the_measured_epoch(tiny, monkeypatch):
    """Fixed-length fine-tuning: every step costs exactly its epochs and two test passes; the
    dense model its pretraining epochs (fewest-most with patience) and one val + test pass."""
    fake = EpochTime("m", "cpu", 0.5, 0.25, train_batches=4, val_batches=2, test_batches=3)
    monkeypatch.setattr(est_module, "measure", lambda cfg, data: fake)
    configs = [
        tiny("finetune.mode=fixed", "finetune.epochs=2", "regime.steps=2"),
        tiny("finetune.mode=fixed", "finetune.epochs=2", "regime.steps=3"),
    ]
    plan = build_plan(configs)
    got = estimate(plan, plan.nodes, lambda cfg: None, pretrain=configs[:1])
    assert fake.epoch == 4 * 0.5 + 2 * 0.25 and fake.test == 0.75
    step = 2 * fake.epoch + 2 * fake.test
    assert set(got.durations.values()) == {(step, step)}
    assert len(got.durations) == 5  # two schedules, no shared step (targets differ)
    pretrain_epochs = (3, 4)  # tiny: 4 epochs with patience 2
    assert got.pretrain == tuple(e * fake.epoch + fake.val + fake.test for e in pretrain_epochs)
    assert got.side_by_side(1, with_pretraining=False) == (5 * step, 5 * step)
    assert got.side_by_side(2, with_pretraining=False) == (3 * step, 3 * step)  # longest chain


def test_measuring_times_batches_and_leaves_the_rng_alone(tiny):
    cfg = tiny()
    data = build_digits(cfg.data, CPU)
    torch.manual_seed(5)
    t = measure(cfg, data)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))  # what runs after timing is what would have run
    assert t.train_batch > 0 and t.eval_batch > 0 and t.device == "cpu"
    assert t.train_batches == math.ceil(data.sizes["train"] / cfg.data.batch_size)
    assert t.val_batches == math.ceil(data.sizes["val"] / cfg.data.eval_batch_size)


def dry_run(invoke, folder, sweep_text: str, *options: str) -> tuple[int, str, str]:
    """`sweep --dry-run` of a sweep file holding `sweep_text`, results in folder/r."""
    sweep = folder / "sweep.yaml"
    sweep.write_text(sweep_text)
    return invoke("sweep", str(sweep), "-r", str(folder / "r"), "--dry-run", *options)


def test_dry_run_prints_the_estimated_wall_time(tmp_path, invoke):
    text = (
        "set: {device: cpu, model.options: {width: 8}, pretrain.epochs: 2, finetune.max_epochs: 2}\n"
        "cases: [{regime: {name: geometric, rate: 0.5}}]\ngrid: {regime.target: [0.5, 0.75]}\n"
    )
    code, out, err = dry_run(invoke, tmp_path, text)
    assert code == 0, err
    assert "digits_cnn on digits (cpu):" in out and "s per epoch" in out
    assert "pretraining" in out  # no dense model stored yet
    assert "1 step at a time (local executor):" in out and "8 steps side by side:" in out
    assert not (tmp_path / "r").exists()
    code, out, _ = dry_run(invoke, tmp_path, text, "--no-estimate")
    assert code == 0 and "estimated wall time" not in out


class Recording(Progress):
    wants_estimate = True

    def sweep_started(self, steps, runs, estimate=None):
        self.started = (steps, runs, estimate)


def test_the_live_display_gets_an_estimate_until_steps_are_timed(tmp_path, tiny):
    progress = Recording()
    run(tiny(), Store(tmp_path), progress)
    steps, runs, (fewest, most) = progress.started
    assert (steps, runs) == (2, 1) and 0 < fewest <= most

    rich = RichProgress()
    rich.sweep_started(4, 1, (100.0, 200.0))
    counts = rich.state.counts()
    rich.close()
    assert "ETA ~1m" in counts and "-3m" in counts  # the estimate, less the time elapsed
    assert Progress.wants_estimate is False  # quiet sweeps time nothing


@pytest.mark.parametrize("seconds", [0, 59.6, 3600 * 2 + 61])
def test_durations_read_like_the_live_display(seconds):
    assert est_module.duration(seconds) in {"0m00s", "1m00s", "2h01m"}


def test_dry_run_builds_a_python_dataset_like_the_run(tmp_path, invoke, monkeypatch):
    """Issue 23: the estimate built data through its own path and called a `python:` dataset
    unknown; it now goes through the runs' data builder."""
    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, "mydata", DATASET_FILE)
    write_module(tmp_path, "mymodel", MODEL_FILE)
    text = (
        "set: {device: cpu, data.name: 'python:mydata.py:make', model.name: 'python:mymodel.py:mlp',"
        " pretrain.epochs: 1, finetune.max_epochs: 1}\ngrid: {regime.target: [0.5, 0.75]}\n"
    )
    code, out, err = dry_run(invoke, tmp_path, text)
    assert code == 0, err
    assert "python:mymodel.py:mlp on python:mydata.py:make (cpu):" in out, out
    assert "s per epoch" in out and not (tmp_path / "r").exists()


def test_a_distilling_step_pays_for_the_teacher_forward(tiny, monkeypatch):
    """Distillation runs the dense teacher on every training batch: its epochs cost that much
    more than plain fine-tuning's, and the measurement times it."""
    fake = EpochTime("m", "cpu", 0.5, 0.25, 4, 2, 3, teacher_batch=0.125)
    monkeypatch.setattr(est_module, "measure", lambda cfg, data: fake)
    plain = tiny("finetune.mode=fixed", "finetune.epochs=2", "regime.steps=1")
    taught = tiny(
        "finetune.mode=fixed",
        "finetune.epochs=2",
        "regime.steps=1",
        "finetune.distill={alpha: 0.5, temperature: 2.0}",
    )
    plan = build_plan([plain, taught])
    got = sorted(estimate(plan, plan.nodes, lambda cfg: None).durations.values())
    plain_step = 2 * (4 * 0.5 + 2 * 0.25) + 2 * 0.75
    assert got == [(plain_step, plain_step), (plain_step + 2 * 4 * 0.125,) * 2]
    measured = measure(tiny(), build_digits(tiny().data, CPU))
    assert measured.teacher_batch > 0
