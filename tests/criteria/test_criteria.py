"""Every criterion against a brute-force computation on a tiny model."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from prunebench.criteria import CRITERIA, make_criterion
from prunebench.errors import PrunebenchError
from prunebench.tasks import Classification


class HalfSquaredError:
    """Regression task: per sample 1/2 ||f(x) - y||^2, averaged over the batch."""

    def forward(self, model, inputs):
        return model(inputs)

    def loss(self, model, batch):
        inputs, targets = batch
        return 0.5 * (self.forward(model, inputs) - targets).pow(2).sum(1).mean()


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, bias=False),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 4, 3, padding=1, groups=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 5),
    )
    with torch.no_grad():  # non-trivial running statistics (eval mode is used for scoring)
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model


def digits_batches(n: int = 12, split: int = 5):
    torch.manual_seed(1)
    x = torch.randn(n, 1, 6, 6)
    y = torch.randint(0, 5, (n,))
    return x, y, [(x[:split], y[:split]), (x[split:], y[split:])]


def params_of(model: nn.Module) -> dict[str, nn.Parameter]:
    return dict(model.named_parameters())


def test_registry_has_the_paper_criteria():
    assert {"magnitude", "magnitude_l2", "taylor", "hessian", "random", "wanda"} <= set(
        CRITERIA.names()
    )
    assert not CRITERIA.get("wanda").structured
    assert all(CRITERIA.get(n).needs_data for n in ("taylor", "hessian", "wanda"))


@pytest.mark.parametrize("vectorize", [True, False])
def test_obd_equals_half_exact_hessian_diagonal_times_w2_on_a_linear_model(vectorize):
    """For 1/2 squared error with every residual +-1, the mean squared per-sample gradient is
    exactly the Hessian diagonal, so OBD must match torch's exact Hessian."""
    torch.manual_seed(2)
    model = nn.Linear(4, 2)
    x = torch.randn(10, 4)
    signs = torch.randint(0, 2, (10, 2)).float() * 2 - 1
    with torch.no_grad():
        y = model(x) - signs  # residual f(x) - y = sign
    task = HalfSquaredError()
    crit = make_criterion("hessian")
    crit.vectorize = vectorize
    scores = crit.weight_scores(model, params_of(model), [(x[:3], y[:3]), (x[3:], y[3:])], task)

    w, b = model.weight.detach().clone(), model.bias.detach().clone()

    def loss(flat):
        weight, bias = flat[:8].reshape(2, 4), flat[8:]
        return 0.5 * (x @ weight.T + bias - y).pow(2).sum(1).mean()

    hessian = torch.autograd.functional.hessian(loss, torch.cat([w.reshape(-1), b]))
    diag = hessian.diagonal()
    torch.testing.assert_close(scores["weight"], 0.5 * diag[:8].reshape(2, 4) * w.pow(2))
    torch.testing.assert_close(scores["bias"], 0.5 * diag[8:] * b.pow(2))


@pytest.mark.parametrize("vectorize", [True, False])
def test_obd_equals_per_sample_gradients_computed_one_by_one(vectorize):
    model = tiny_cnn()
    x, y, batches = digits_batches()
    crit = make_criterion("hessian")
    crit.vectorize = vectorize
    scores = crit.weight_scores(model, params_of(model), batches, Classification())
    assert model.training  # the mode is restored

    model.eval()
    squares = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(y)):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for n, p in model.named_parameters():
            squares[n] += p.grad.pow(2)
    for n, p in model.named_parameters():
        expected = 0.5 * (squares[n] / len(y)) * p.detach().pow(2)
        torch.testing.assert_close(scores[n], expected, rtol=1e-4, atol=1e-10)


def test_taylor_is_gradient_of_the_mean_loss_times_weight_squared_whatever_the_batching():
    model = tiny_cnn()
    x, y, batches = digits_batches()
    scores = make_criterion("taylor").weight_scores(
        model, params_of(model), batches, Classification()
    )
    model.eval()
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(scores[n], (p.grad * p.detach()).pow(2), rtol=1e-4, atol=1e-12)


def test_wanda_linear_uses_the_norm_of_each_input_feature_over_all_rows():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(7, 5, 3)  # samples x tokens x features: the norm runs over both
    y = torch.zeros(7, dtype=torch.long)
    scores = make_criterion("wanda").weight_scores(
        model,
        {"0.weight": model[0].weight, "2.weight": model[2].weight},
        [(x[:4], y[:4]), (x[4:], y[4:])],
        Classification(),
    )
    norm0 = x.reshape(-1, 3).pow(2).sum(0).sqrt()
    hidden = torch.relu(model[0](x)).reshape(-1, 4)
    norm2 = hidden.pow(2).sum(0).sqrt()
    torch.testing.assert_close(scores["0.weight"], model[0].weight.abs().detach() * norm0)
    torch.testing.assert_close(scores["2.weight"], model[2].weight.abs().detach() * norm2)


@pytest.mark.parametrize("groups,stride", [(1, 1), (2, 2)])
def test_wanda_conv_uses_the_norm_of_the_inputs_each_weight_multiplies(groups, stride):
    torch.manual_seed(4)
    conv = nn.Conv2d(4, 6, 3, padding=1, stride=stride, groups=groups, bias=False)
    x = torch.randn(3, 4, 5, 5)
    scores = make_criterion("wanda").weight_scores(
        conv, {"weight": conv.weight}, [(x, torch.zeros(3, dtype=torch.long))], Classification()
    )
    padded = F.pad(x, (1, 1, 1, 1))
    out_h = (5 + 2 - 3) // stride + 1
    per_group_in, per_group_out = 4 // groups, 6 // groups
    expected = torch.zeros_like(conv.weight)
    for o in range(6):
        g = o // per_group_out
        for c in range(per_group_in):
            for i in range(3):
                for j in range(3):
                    window = padded[:, g * per_group_in + c, i : i + stride * out_h : stride][
                        :, :, j : j + stride * out_h : stride
                    ]
                    expected[o, c, i, j] = (
                        conv.weight[o, c, i, j].abs() * window.pow(2).sum().sqrt()
                    )
    torch.testing.assert_close(scores["weight"], expected, rtol=1e-5, atol=1e-7)


def test_magnitude_scores():
    model = tiny_cnn()
    params = params_of(model)
    l1 = make_criterion("magnitude").weight_scores(model, params)
    l2 = make_criterion("magnitude_l2").weight_scores(model, params)
    for n, p in params.items():
        assert torch.equal(l1[n], p.detach().abs())
        assert torch.equal(l2[n], p.detach().pow(2))


def test_random_scores_follow_the_seed():
    model = tiny_cnn()
    torch.manual_seed(7)
    a = make_criterion("random").weight_scores(model, params_of(model))
    torch.manual_seed(7)
    b = make_criterion("random").weight_scores(model, params_of(model))
    assert all(torch.equal(a[n], b[n]) for n in a)
    torch.manual_seed(8)
    c = make_criterion("random").weight_scores(model, params_of(model))
    assert not any(torch.equal(a[n], c[n]) for n in a)  # random, not a fixed ranking


@pytest.mark.parametrize("name", ["taylor", "hessian", "wanda"])
def test_data_dependent_criteria_refuse_to_run_without_data(name):
    model = tiny_cnn()
    with pytest.raises(PrunebenchError, match="calibration"):
        make_criterion(name).weight_scores(model, {"0.weight": model[0].weight})


# ------------------------------------------------------------------ channel-group scores


class ConvBnLinear(nn.Module):
    """conv -> bn -> relu -> conv -> bn -> flatten -> linear: the flatten maps each channel of
    the second conv to 4 classifier inputs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 2, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2)
        self.fc = nn.Linear(8, 4)
        with torch.no_grad():
            self.bn1.weight.uniform_(0.5, 1.5)
            self.bn2.weight.uniform_(0.5, 1.5)

    def forward(self, x):
        x = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.relu(x).flatten(1))


def _group(model, layer):
    import torch_pruning as tp

    dg = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 1, 4, 4))
    n = dg.get_out_channels(layer)
    return dg.get_pruning_group(
        layer, dg.get_pruner_of_module(layer).prune_out_channels, list(range(n))
    )


@pytest.mark.parametrize("name,fn", [("magnitude", torch.abs), ("magnitude_l2", torch.square)])
def test_group_magnitude_sums_every_weight_the_channel_takes_away(name, fn):
    model = ConvBnLinear()
    crit = make_criterion(name)
    imp = crit.group_importance(model, params_of(model))
    first = imp(_group(model, model.conv1))
    second = imp(_group(model, model.conv2))
    w1, g1, w2, g2, fc = (
        fn(t.detach())
        for t in (
            model.conv1.weight,
            model.bn1.weight,
            model.conv2.weight,
            model.bn2.weight,
            model.fc.weight,
        )
    )
    expected1 = torch.stack([w1[c].sum() + g1[c] + w2[:, c].sum() for c in range(3)])
    expected2 = torch.stack(
        [w2[c].sum() + g2[c] + fc[:, 4 * c : 4 * c + 4].sum() for c in range(2)]
    )
    torch.testing.assert_close(first, expected1)
    torch.testing.assert_close(second, expected2)


@pytest.mark.parametrize("name", ["taylor", "hessian"])
def test_group_taylor_and_obd_sum_their_weight_scores_over_the_group(name):
    model = ConvBnLinear()
    x = torch.randn(6, 1, 4, 4)
    y = torch.randint(0, 4, (6,))
    crit = make_criterion(name)
    params = params_of(model)
    weights = {n: p for n, p in params.items() if n.endswith("weight")}
    per_weight = crit.weight_scores(model, weights, [(x, y)], Classification())
    imp = crit.group_importance(model, weights, [(x, y)], Classification())
    s = per_weight
    expected = torch.stack(
        [
            s["conv2.weight"][c].sum()
            + s["bn2.weight"][c]
            + s["fc.weight"][:, 4 * c : 4 * c + 4].sum()
            for c in range(2)
        ]
    )
    torch.testing.assert_close(imp(_group(model, model.conv2)), expected, rtol=1e-5, atol=1e-12)


def test_random_group_scores_are_one_uniform_number_per_channel():
    model = ConvBnLinear()
    imp = make_criterion("random").group_importance(model, params_of(model))
    torch.manual_seed(0)
    scores = imp(_group(model, model.conv1))
    torch.manual_seed(0)
    assert torch.equal(scores, torch.rand(3))
