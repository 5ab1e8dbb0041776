"""pruning/rollback.py: a model changed the way Torch-Pruning and the head cuts change it
(parameters, buffers, children and attributes replaced, attributes added) is put back exactly,
the same objects included."""

from __future__ import annotations

import torch
from torch import nn

from prunebench.pruning.rollback import restore, snapshot


def test_restore_puts_back_the_same_parameters_buffers_children_and_attributes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(36, 3))
    x = torch.randn(2, 2, 5, 5)
    before = model.eval()(x)
    conv, norm, head = model[0], model[1], model[3]
    weight, running_mean = conv.weight, norm.running_mean
    states = snapshot(model)

    conv.weight = nn.Parameter(conv.weight[:3].clone())  # what a channel cut does
    conv.out_channels = 3
    norm.running_mean = norm.running_mean[:3].clone()
    norm.num_features = 3
    conv.added_by_the_step = True
    model[3] = nn.Linear(27, 3)
    restore(states)

    assert conv.weight is weight and norm.running_mean is running_mean
    assert conv.out_channels == 4 and norm.num_features == 4
    assert not hasattr(conv, "added_by_the_step")
    assert model[3] is head
    assert torch.equal(model(x), before)
