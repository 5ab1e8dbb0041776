"""pruning/rollback.py: a model changed the way Torch-Pruning and the head cuts change it
(parameters, buffers, children and attributes replaced, attributes added) is put back exactly,
the same objects included."""

from __future__ import annotations

import gc
import weakref

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


def test_a_large_model_is_saved_to_a_file_and_a_replaced_tensor_is_freed_at_once():
    """Above the spill size the snapshot holds weak references: a tensor a cut replaces is freed
    (no second copy of the cut layers), and a restore rebuilds it from the file with the same
    values, while what the step left alone comes back as the same object."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    model[2].weight.requires_grad_(False)
    x = torch.randn(4, 6)
    before = model(x).detach()  # no graph holding the weights
    first, kept, frozen = model[0].weight, model[0].bias, model[2].weight
    values = first.detach().clone()
    freed = weakref.ref(first)
    states = snapshot(model, spill_above=0)
    assert states.file is not None

    model[0].weight = nn.Parameter(first[:5].detach().clone())  # a cut: the original goes
    model[0].out_features = 5
    del first
    gc.collect()
    assert freed() is None
    model[2].weight = nn.Parameter(frozen[:, :5].clone(), requires_grad=False)
    restore(states)
    states.close()

    assert model[0].bias is kept and model[0].out_features == 8
    assert isinstance(model[0].weight, nn.Parameter) and model[0].weight.requires_grad
    assert torch.equal(model[0].weight, values)
    assert model[2].weight is frozen  # still alive here: the same object comes back
    assert torch.equal(model(x), before)


def test_a_spilled_tied_weight_is_written_once_and_comes_back_as_one_parameter():
    """An embedding tied to the output layer (one Parameter, two modules): spilled once, and
    when a cut has replaced it in both, rebuilt as ONE new Parameter that both modules hold."""
    torch.manual_seed(0)
    embed, out = nn.Embedding(5, 4), nn.Linear(4, 5, bias=False)
    out.weight = embed.weight
    model = nn.Sequential(embed, out)
    ids = torch.tensor([[0, 3, 4]])
    before = model(ids).detach()
    tied = embed.weight
    values, size = tied.detach().clone(), tied.numel() * tied.element_size()
    freed = weakref.ref(tied)
    states = snapshot(model, spill_above=0)
    assert states.file is not None and states.file.seek(0, 2) == size  # its bytes once

    shared = nn.Parameter(tied[:, :3].detach().clone())  # a hidden-size cut of both
    embed.weight, out.weight = shared, shared
    del tied
    gc.collect()
    assert freed() is None
    restore(states)
    states.close()

    assert embed.weight is out.weight and embed.weight is not shared
    assert torch.equal(embed.weight, values) and embed.weight.requires_grad
    assert torch.equal(model(ids), before)
