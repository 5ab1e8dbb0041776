"""finetune.distill: the loss against a hand computation, keys left alone when off, and runs
that distil (patience, torch.compile's graph capture) end to end."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from prunebench.config.fit_settings import Distill, finetune_settings
from prunebench.config.identity import run_id
from prunebench.config.loading import load_run_config
from prunebench.engine.distill import DistillingTask, soft_loss
from prunebench.engine.plan import plan_steps
from prunebench.engine.single_run import run
from prunebench.errors import ConfigError
from prunebench.store.database import Store
from prunebench.tasks import make_task


def hand_kl(student: list[list[float]], teacher: list[list[float]], t: float) -> float:
    """T^2 * mean over rows of sum_c p_c (log p_c - log q_c), p = teacher, q = student."""

    def softmax(row):
        exps = [math.exp(x / t) for x in row]
        return [e / sum(exps) for e in exps]

    total = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p, q = softmax(t_row), softmax(s_row)
        total += sum(pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q, strict=True))
    return t * t * total / len(student)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_the_soft_term_is_the_temperature_scaled_kl(temperature):
    student = [[0.1, 2.0, -1.0], [1.5, 0.0, 0.3]]
    teacher = [[1.0, 0.5, -0.2], [0.0, 2.5, 0.1]]
    got = soft_loss(torch.tensor(student), torch.tensor(teacher), temperature)
    assert float(got) == pytest.approx(hand_kl(student, teacher, temperature), rel=1e-5)


class Fixed(nn.Module):
    """Returns the logits it holds, whatever the input (batch of token ids)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, input_ids):
        return self.logits


def test_a_language_model_distils_only_on_scored_tokens():
    torch.manual_seed(0)
    student, teacher = torch.randn(1, 3, 5), torch.randn(1, 3, 5)
    targets = torch.tensor([[2, -100, 4]])  # the middle token is not scored
    task = make_task("causal_lm")
    distilling = DistillingTask(task, Fixed(teacher), Distill(alpha=0.25, temperature=2.0))
    loss = distilling.loss(Fixed(student.clone()), (torch.zeros(1, 3, dtype=torch.long), targets))
    hard = -(torch.log_softmax(student[0, 0], -1)[2] + torch.log_softmax(student[0, 2], -1)[4]) / 2
    soft = hand_kl(student[0, [0, 2]].tolist(), teacher[0, [0, 2]].tolist(), 2.0)
    assert float(loss.detach()) == pytest.approx(0.75 * float(hard) + 0.25 * soft, rel=1e-5)
    loss.backward()  # the student learns; the teacher gets no gradient
    teacher_model = distilling.teacher
    assert teacher_model.logits.grad is None and not teacher_model.training


def test_off_by_default_and_left_out_of_every_key(tiny):
    plain = tiny()
    distilled = tiny("finetune.distill={alpha: 0.5, temperature: 2.0}")
    assert plain.finetune.distill is None
    assert run_id(plain) == run_id(tiny("finetune.distill=null"))
    assert run_id(distilled) != run_id(plain)
    keys = [p.key for p in plan_steps(plain, "base")]
    assert keys != [p.key for p in plan_steps(distilled, "base")]
    settings = finetune_settings(distilled.finetune, 0.1, first_step=True)
    assert settings.distill == Distill(0.5, 2.0)


def test_the_ids_and_step_keys_of_existing_configs_did_not_change(tiny):
    """Computed on the commit before finetune.distill and prune.uniform_widths existed."""
    assert run_id(tiny()) == "a8595994498efaf2"
    assert [p.key for p in plan_steps(tiny(), "base")] == ["7e77a96ae5ac84bc", "f59fffdf76bc4897"]


@pytest.mark.slow
def test_a_distilled_run_with_patience(tiny, tmp_path):
    cfg = tiny("finetune.distill={alpha: 0.7, temperature: 3.0}", "prune.latency=false")
    result = run(cfg, Store(tmp_path))
    plain = run(tiny("prune.latency=false"), Store(tmp_path))
    assert [r["step"] for r in result.rows] == [1, 2]
    assert all(1 <= r["epochs"] <= 3 for r in result.rows)  # patience 1, cap 3
    # the same dense model and pruning; the training loss (and so the weights) differ
    assert result.rows[0]["pruned_test_top1"] == plain.rows[0]["pruned_test_top1"]
    assert result.rows[0]["test_loss"] != plain.rows[0]["test_loss"]
    # the report pairs the distilled variant with the same one without distillation
    from prunebench.report.build import contexts
    from prunebench.report.distillation import distillation
    from prunebench.store.results import load_results

    (ctx,) = contexts(load_results(tmp_path, outcomes=True), 0.05, None)
    (table,) = distillation(ctx).tables()
    ((ratio, _, label, distilled, plain_cell, epochs, _, verdict),) = table.rows
    assert (
        epochs
        == f"{sum(r['epochs'] for r in result.rows):g} / {sum(r['epochs'] for r in plain.rows):g}"
    )
    assert ratio == "80 %" and "alpha=0.7" in label
    assert distilled == f"{100 * result.rows[-1]['test_top1']:.2f}"
    assert plain_cell == f"{100 * plain.rows[-1]['test_top1']:.2f}"
    assert verdict in ("distillation better", "plain better", "equivalent", "inconclusive")


def test_distillation_runs_through_graph_capture(tiny):
    """The fast path: the student's forward compiled (eager backend: the same graph capture)."""
    from prunebench.accel import Execution
    from prunebench.data.base import DataBundle
    from prunebench.data.info import DataInfo
    from prunebench.data.memory import TensorLoader
    from prunebench.engine.finetune import fit

    torch.manual_seed(0)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    loader = TensorLoader(x, y, batch_size=8)
    info = DataInfo("classification", num_classes=3)
    data = DataBundle(info, loader, loader, loader, loader, {"train": 32})
    teacher, student = nn.Linear(6, 3), nn.Linear(6, 3)
    settings = finetune_settings(tiny("finetune.distill={alpha: 1.0}").finetune, 0.1, True)
    before = teacher.weight.detach().clone()
    result = fit(
        student, data, make_task("classification"), settings, torch.device("cpu"),
        execution=Execution(compile=True, backend="eager"), teacher=teacher,
    )  # fmt: skip
    assert result.epochs >= 1 and torch.equal(teacher.weight, before)
    # alpha = 1: the student learns the teacher's outputs, not the labels
    gap = (student(x) - teacher(x)).abs().mean()
    assert gap < (nn.Linear(6, 3)(x) - teacher(x)).abs().mean()


@pytest.mark.parametrize("temperature", [1e-300, 0.01, 101.0, 1e308])
def test_a_temperature_far_outside_is_refused_before_training(temperature):
    """Softened logits overflow or vanish there: refused at config load, not a divergence."""
    with pytest.raises(ConfigError, match=r"finetune\.distill\.temperature"):
        load_run_config(None, [f"finetune.distill={{alpha: 0.5, temperature: {temperature}}}"])
