"""Issue 23: every output of a model is protected and checked, and a refused step leaves the
model exactly as it was."""

from __future__ import annotations

import copy
import weakref

import pytest
import torch
from torch import nn

import prunebench
from prunebench.errors import ConfigError, PrunebenchError
from prunebench.models.roles import output_tensors
from prunebench.pruning import rollback

X = torch.randn(2, 3, 8, 8)


class FeaturesAndLogits(nn.Module):
    """Returns its pooled features and its logits, as many backbones with a head do."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        features = torch.relu(self.body(torch.relu(self.stem(x)))).mean((2, 3))
        return features, self.fc(features)


class ThreeHeads(nn.Module):
    """Logits first, then two more heads (a 1000-way one among them) in a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.hidden = nn.Linear(16, 32)
        self.classes = nn.Linear(32, 10)
        self.big = nn.Linear(32, 1000)
        self.embed = nn.Linear(32, 6)

    def forward(self, x):
        h = torch.relu(self.hidden(torch.relu(self.stem(x)).mean((2, 3))))
        return self.classes(h), {"big": self.big(h), "embed": self.embed(h)}


class BreaksWhenPruned(nn.Module):
    """Reshapes to a fixed number of channels: Torch-Pruning cuts the convs and the head's
    inputs, then the forward fails."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.b(torch.relu(self.a(x))))
        return self.head(x.reshape(x.shape[0], 8, -1).mean(2))


def shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    with torch.no_grad():
        return {k: tuple(t.shape) for k, t in output_tensors(model.eval()(X)).items()}


@pytest.mark.parametrize("model_class", [FeaturesAndLogits, ThreeHeads])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_every_output_keeps_its_shape(model_class, scope):
    model = model_class()
    dense = shapes(model)
    assert len(dense) >= 2
    params = sum(p.numel() for p in model.parameters())
    pruner = prunebench.StructuredPruner.for_model(model, X, scope=scope)
    pruner.prune_to(model, 0.5)
    assert shapes(model) == dense
    assert sum(p.numel() for p in model.parameters()) < params  # something was pruned


def test_three_outputs_are_named_and_their_layers_kept():
    model = ThreeHeads()
    assert set(shapes(model)) == {"output[0]", "output[1]['big']", "output[1]['embed']"}
    pruner = prunebench.StructuredPruner.for_model(model, X)
    assert {"classes", "big", "embed"} <= set(pruner.ignored)
    assert "prune.include=[big]" in pruner.ignored["big"]
    pruner.prune_to(model, 0.7)
    assert (model.big.out_features, model.embed.out_features) == (1000, 6)
    assert model.hidden.out_features < 32


def test_prune_include_lets_an_output_shrink():
    model = ThreeHeads()
    pruner = prunebench.StructuredPruner.for_model(model, X, scope="layerwise", include=["embed"])
    assert "embed" not in pruner.ignored and "big" in pruner.ignored
    pruner.prune_to(model, 0.5)
    got = shapes(model)
    assert got["output[1]['embed']"] == (2, 3)  # half of 6
    assert got["output[0]"] == (2, 10) and got["output[1]['big']"] == (2, 1000)


def test_prune_include_names_must_exist_and_need_structured_pruning():
    with pytest.raises(ConfigError, match=r"prune\.include: no module named 'embd'"):
        prunebench.StructuredPruner.for_model(ThreeHeads(), X, include=["embd"])
    with pytest.raises(ConfigError, match=r"prune\.include needs prune\.structure=structured"):
        prunebench.load_run_config(None, ["prune.include=[fc]"])


def test_a_refused_step_leaves_the_model_and_the_pruner_as_they_were():
    model = BreaksWhenPruned()
    pruner = prunebench.StructuredPruner.for_model(model, X, scope="layerwise")
    before = copy.deepcopy(model.state_dict())
    params = list(model.parameters())
    attributes = [(m.in_features, m.out_features) for m in [model.head]]
    with pytest.raises(PrunebenchError, match="no longer runs after pruning"):
        pruner.prune_to(model, 0.5)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert list(model.parameters()) == params  # the same objects: an optimizer still fits
    assert [(m.in_features, m.out_features) for m in [model.head]] == attributes
    assert (model.a.out_channels, model.b.in_channels, model.b.out_channels) == (8, 8, 8)
    assert model.head.weight.shape == (4, 8)
    assert pruner.graph.history() == [] and pruner.current_channels() == [8, 8]
    assert model(X).shape == (2, 4)


def test_a_refused_step_of_a_model_above_the_spill_size_comes_back_from_the_file(monkeypatch):
    """Above rollback.SPILL_BYTES the cut tensors are freed as they are replaced and a refusal
    rebuilds them from the snapshot's file: the same values, shapes and parameters."""
    monkeypatch.setattr(rollback, "SPILL_BYTES", 0)
    model = BreaksWhenPruned()
    pruner = prunebench.StructuredPruner.for_model(model, X, scope="layerwise")
    before = copy.deepcopy(model.state_dict())
    originals = {n: weakref.ref(p) for n, p in model.named_parameters()}
    with pytest.raises(PrunebenchError, match="no longer runs after pruning"):
        pruner.prune_to(model, 0.5)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in model.parameters())
    # the cut weights were freed and rebuilt from the file (not kept alive by the snapshot)
    rebuilt = {n for n, p in model.named_parameters() if originals[n]() is not p}
    assert {"a.weight", "b.weight"} <= rebuilt
    assert (model.a.out_channels, model.b.in_channels, model.b.out_channels) == (8, 8, 8)
    assert pruner.graph.history() == [] and pruner.current_channels() == [8, 8]
    assert model(X).shape == (2, 4)


def test_a_refused_step_after_a_good_one_goes_back_to_the_good_one():
    model = FeaturesAndLogits()
    pruner = prunebench.StructuredPruner.for_model(model, X, scope="layerwise")
    pruner.prune_to(model, 0.5)
    state, history = copy.deepcopy(model.state_dict()), pruner.graph.history()

    def refuse(*args):
        raise PrunebenchError("refused on purpose")

    pruner._check_output = refuse  # a refusal after every cut of the second step
    with pytest.raises(PrunebenchError, match="refused on purpose"):
        pruner.prune_to(model, 0.75)
    assert pruner.graph.history() == history
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert model.stem.out_channels == 4
