"""Calibration statistics layer by layer: gradients handed over one parameter at a time, the
model's .grad left alone, and the large-model paths (sums in the weights' dtype, one backward per
sample) giving the small-model results."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunebench.criteria import calibration, make_criterion
from prunebench.tasks import Classification


def model_and_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    batches = [(torch.randn(5, 6), torch.randint(0, 3, (5,))) for _ in range(3)]
    params = {n: p for n, p in model.named_parameters() if n.endswith("weight")}
    return model, batches, params


def test_gradients_arrive_one_parameter_at_a_time_and_grad_is_left_alone():
    model, batches, params = model_and_batches()
    marker = torch.full_like(params["0.weight"], 7.0)
    params["0.weight"].grad = marker
    live: list[int] = []
    got: dict[str, torch.Tensor] = {}

    def add(name, grad):
        live.append(sum(p.grad is not None for p in params.values()))
        got[name] = grad.clone()

    loss = Classification().loss(model, batches[0])
    expected = torch.autograd.grad(loss, list(params.values()), retain_graph=True)
    calibration.backward_into(loss, params, add)
    assert live == [1, 1]  # only the parameter being handed over holds a gradient
    for (name, _), grad in zip(params.items(), expected, strict=True):
        assert torch.allclose(got[name], grad)
    assert params["0.weight"].grad is marker and params["2.weight"].grad is None
    assert all(p.grad is None for n, p in model.named_parameters() if n.endswith("bias"))


@pytest.mark.parametrize("name", ["taylor", "hessian"])
def test_the_large_model_paths_give_the_same_scores(monkeypatch, name):
    model, batches, params = model_and_batches()
    task = Classification()
    exact = make_criterion(name).weight_scores(model, params, batches, task)
    monkeypatch.setattr(calibration, "EXACT_SUMS", 0)  # sums in float32
    monkeypatch.setattr(calibration, "VMAP_BUDGET", 0)  # one backward per sample
    large = make_criterion(name).weight_scores(model, params, batches, task)
    for key, value in exact.items():
        assert large[key].dtype == torch.float32
        assert torch.allclose(large[key], value, rtol=1e-5, atol=1e-12), key


def test_wanda_input_norms_match_a_float64_computation():
    model, batches, _ = model_and_batches()
    norms, count = calibration.input_feature_norms(model, {"0": model[0]}, batches)
    rows = torch.cat([x for x, _ in batches]).double()
    assert count == 15
    assert torch.allclose(norms["0"], rows.pow(2).sum(0).sqrt(), rtol=1e-6)


def test_a_failing_vmap_leaves_nothing_behind_in_the_sums(monkeypatch):
    """vmap failing half-way through a batch (an op without a batching rule) switches to one
    backward per sample without keeping what it had added: the scores equal the loop's."""
    model, batches, params = model_and_batches()
    task = Classification()
    looped = make_criterion("hessian")
    looped.vectorize = False
    expected = looped.weight_scores(model, params, batches, task)

    def half_then_fail(model, params, task, inputs, targets, sums):
        for value in sums.values():
            value += 1.0
        raise RuntimeError("no batching rule")

    monkeypatch.setattr(calibration, "_per_sample_vmap", half_then_fail)
    got = make_criterion("hessian").weight_scores(model, params, batches, task)
    for key, value in expected.items():
        assert torch.allclose(got[key], value, rtol=1e-12, atol=0), key


def test_wanda_input_norms_in_chunks_match_one_float64_computation(monkeypatch):
    """Rows (Linear) and images (Conv2d) squared a few at a time, uneven last chunk included,
    give the norms of all rows at once."""
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1, stride=2)
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(3 * 3 * 3, 4))
    batches = [(torch.randn(5, 2, 6, 6), torch.randint(0, 4, (5,))) for _ in range(2)]
    monkeypatch.setattr(calibration, "FEATURE_CHUNK", 100)  # 1 image; 3 rows, then 2
    modules = {"0": model[0], "2": model[2]}
    norms, _ = calibration.input_feature_norms(model, modules, batches)
    images = torch.cat([x for x, _ in batches]).double()
    cols = nn.functional.unfold(images, 3, padding=1, stride=2)
    assert torch.allclose(norms["0"], cols.pow(2).sum(dim=(0, 2)).sqrt(), rtol=1e-12)
    with torch.no_grad():
        rows = model[1](model[0](torch.cat([x for x, _ in batches]))).double()
    assert torch.allclose(norms["2"], rows.pow(2).sum(0).sqrt(), rtol=1e-6)


@pytest.mark.parametrize("name", ["taylor", "hessian"])
def test_chunked_passes_give_the_one_pass_scores_bit_for_bit(monkeypatch, name):
    """A model larger than SUM_BUDGET is scored a chunk of parameters per pass over the
    calibration batches (a one-shot stream included): the same numbers as one pass, only the
    chunk requiring gradients during its pass, every flag restored after."""
    model, batches, params = model_and_batches()
    task = Classification()
    whole = make_criterion(name).weight_scores(model, params, batches, task)
    model[2].bias.requires_grad_(False)  # a frozen parameter stays frozen
    needing: list[list[bool]] = []
    model.register_forward_pre_hook(
        lambda module, args: needing.append([p.requires_grad for p in params.values()])
    )
    monkeypatch.setattr(calibration, "SUM_BUDGET", params["0.weight"].numel())  # one each
    monkeypatch.setattr(calibration, "MAX_PASSES", 8)
    chunked = make_criterion(name).weight_scores(model, params, iter(batches), task)
    for key, value in whole.items():
        assert torch.equal(chunked[key], value), key
    assert needing[0] == [True, False] and needing[-1] == [False, True]
    assert [p.requires_grad for p in model.parameters()] == [True, True, True, False]


def test_chunks_keep_the_order_and_the_budget():
    params = {
        n: nn.Parameter(torch.zeros(size)) for n, size in zip("abcd", (3, 4, 9, 2), strict=True)
    }
    parts = calibration.chunks(params, 7)
    assert [list(part) for part in parts] == [["a", "b"], ["c"], ["d"]]


def test_taylor_scores_are_the_gradient_of_the_mean_loss_over_all_samples(monkeypatch):
    """Independent computation: one autograd.grad of the loss over every sample at once."""
    model, batches, params = model_and_batches()
    task = Classification()
    monkeypatch.setattr(calibration, "SUM_BUDGET", 1)
    monkeypatch.setattr(calibration, "MAX_PASSES", 2)  # 2 passes, not 1 per weight
    passes = []
    model.register_forward_pre_hook(lambda module, args: passes.append(1))
    got = make_criterion("taylor").weight_scores(model, params, batches, task)
    assert len(passes) == 2 * len(batches)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    grads = torch.autograd.grad(task.loss(model, (x, y)), list(params.values()))
    for (key, param), grad in zip(params.items(), grads, strict=True):
        expected = (grad * param.detach()).square()
        assert torch.allclose(got[key], expected, rtol=1e-5, atol=1e-12), key
