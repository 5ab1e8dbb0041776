"""A fused layer whose output is split in parts that are multiplied (Phi-3's gate_up_proj:
gate and up projections in one Linear, `chunk(2)` in the forward): a unit of structured
pruning is one channel of each part, the same index in both, so that a ratio counts real MLP
channels and the pruned layer still splits into matching halves."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import prunebench

WIDTH = 32
X = torch.randn(4, 6)


class GatedMLP(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Linear(6, 16)
        self.gate_up = nn.Linear(16, 2 * WIDTH)
        self.down = nn.Linear(WIDTH, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        gate, up = self.gate_up(torch.relu(self.inp(x))).chunk(2, dim=-1)
        return self.head(self.down(F.silu(gate) * up))


def kept_rows(pruned: torch.Tensor, dense: torch.Tensor) -> list[int]:
    """The dense row each pruned row is (rows are distinct in a random init)."""
    return [int((dense == row).all(1).nonzero()) for row in pruned]


@pytest.mark.parametrize("target", [0.2, 0.5, 0.8])
def test_a_unit_is_one_channel_of_each_part(target):
    model = GatedMLP()
    dense = copy.deepcopy(model)
    pruner = prunebench.StructuredPruner.for_model(
        model, X, scope="layerwise", exclude=["inp", "down"]
    )
    assert [g.original for g in pruner.groups if g.root == "gate_up"] == [WIDTH]
    pruner.prune_to(model, target)
    kept = model.down.in_features
    assert model.gate_up.out_features == 2 * kept < 2 * WIDTH
    w = model.gate_up.weight.detach()
    gate = kept_rows(w[:kept], dense.gate_up.weight.detach())
    up = [r - WIDTH for r in kept_rows(w[kept:], dense.gate_up.weight.detach())]
    assert gate == up and all(0 <= r < WIDTH for r in gate)  # the same channels in both halves
    # the pruned model is the dense one with those MLP channels removed, computed by hand
    h = torch.relu(dense.inp(X))
    g = F.linear(h, dense.gate_up.weight[gate], dense.gate_up.bias[gate])
    u = F.linear(h, dense.gate_up.weight[[r + WIDTH for r in gate]],
                 dense.gate_up.bias[[r + WIDTH for r in gate]])  # fmt: skip
    expected = dense.head(F.linear(F.silu(g) * u, dense.down.weight[:, gate], dense.down.bias))
    with torch.no_grad():
        assert torch.allclose(model(X), expected, atol=1e-6)
