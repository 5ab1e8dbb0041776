"""Channel-group scores from per-layer totals (criteria.groups): each layer's weight scores are
reduced to per-channel sums as they arrive, giving the slice-wise sums bit for bit; a tiny Llama's
Taylor step scores MLP channels and key/value heads as an independent computation does."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from prunebench.config.schema import ModelConfig, PruneConfig
from prunebench.criteria import calibration
from prunebench.criteria.groups import _local_scores, layer_totals
from prunebench.models.build import build_model, model_spec
from prunebench.pruning.channel_groups import unit_scores
from prunebench.pruning.factory import make_pruner
from prunebench.pruning.heads import head_scores
from prunebench.tasks import make_task
from tiny_lm_configs import COMMON, DECODER, INFO, VOCAB

LAYERS = {
    "linear": nn.Linear(24, 10),
    "conv1d": Conv1D(10, 24),  # GPT-2's transposed Linear: weight (in, out)
    "transposed_conv": nn.ConvTranspose2d(6, 4, 3),
    "grouped_conv": nn.Conv2d(6, 4, 3, groups=2),
}


def slice_sum(layer: nn.Module, kind: str, score: torch.Tensor, idxs: list[int]) -> torch.Tensor:
    """What a cut removes, summed slice by slice (the sums before per-layer totals)."""
    transposed = isinstance(layer, (Conv1D, nn.ConvTranspose2d))
    if kind == "out":
        s = score.transpose(0, 1) if transposed else score
        return s[idxs].flatten(1).sum(1)
    if transposed:
        return score[idxs].flatten(1).sum(1)
    if getattr(layer, "groups", 1) > 1:  # input c meets only its group's outputs
        per_group = score.shape[0] // layer.groups
        width = score.shape[1]
        return torch.stack(
            [score[(c // width) * per_group : (c // width + 1) * per_group, c % width].sum()
             for c in idxs]
        )  # fmt: skip
    return score[:, idxs].sum(0)  # a Linear's input columns


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_totals_are_the_slice_sums(name):
    torch.manual_seed(0)
    layer = LAYERS[name]
    score = torch.rand(layer.weight.shape).square()
    totals = layer_totals(layer, score)
    for kind in ("out", "in"):
        width = len(totals.out if kind == "out" else totals.inp)
        idxs = [0, 2, width - 1]
        got = _local_scores(totals, kind, idxs)
        expected = slice_sum(layer, kind, score, idxs)
        if kind == "out" or name != "grouped_conv":
            assert torch.equal(got, expected), kind  # the same sums, bit for bit
        else:
            torch.testing.assert_close(got, expected)


def tiny_llama():
    config = {"model_type": "llama", **COMMON, **DECODER, "num_key_value_heads": 2}
    cfg = ModelConfig(name="hf", options={"config": config})
    torch.manual_seed(0)
    model = build_model(cfg, INFO)
    prune = PruneConfig(structure="structured", criterion="taylor", latency=False)
    return model, make_pruner(prune, model, model_spec(cfg), INFO)


def independent_taylor(model, ids) -> dict[str, torch.Tensor]:
    """(g * w)^2 with g the gradient of the mean token loss over every sequence at once."""
    named = dict(model.named_parameters())
    logits = model(input_ids=ids[:, :-1]).logits
    loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    grads = torch.autograd.grad(loss, list(named.values()), allow_unused=True)
    return {
        n: (g * p.detach()).square() for (n, p), g in zip(named.items(), grads, strict=True)
        if g is not None
    }  # fmt: skip


def test_a_llama_taylor_step_scores_channels_and_heads_as_computed_independently(monkeypatch):
    model, pruner = tiny_llama()
    ids = torch.randint(3, VOCAB, (4, 17))
    batches = [(ids[i : i + 2, :-1], ids[i : i + 2, 1:]) for i in (0, 2)]
    task = make_task("causal_lm")
    model.eval()
    s = independent_taylor(model, ids)
    monkeypatch.setattr(calibration, "SUM_BUDGET", 5000)  # a chunk per projection or two
    monkeypatch.setattr(calibration, "MAX_PASSES", 100)
    importance = pruner.criterion.group_importance(
        model, pruner.scored_params(model), iter(batches), task
    )
    for group in pruner.groups:  # model.layers.N.mlp.up_proj: channel c of the MLP
        mlp = group.root.rsplit(".", 1)[0]
        expected = (
            s[f"{mlp}.gate_proj.weight"].sum(1)
            + s[f"{mlp}.up_proj.weight"].sum(1)
            + s[f"{mlp}.down_proj.weight"].sum(0)
        )
        got = unit_scores(pruner.graph, pruner.graph.full_group(group.module), importance)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-12)
    d = 16  # head_dim; 4 query heads over 2 key/value heads
    for layout in pruner.head_layouts:
        a = layout.name
        expected = torch.stack(
            [
                s[f"{a}.q_proj.weight"][2 * kv * d : 2 * (kv + 1) * d].sum()
                + s[f"{a}.k_proj.weight"][kv * d : (kv + 1) * d].sum()
                + s[f"{a}.v_proj.weight"][kv * d : (kv + 1) * d].sum()
                + s[f"{a}.o_proj.weight"][:, 2 * kv * d : 2 * (kv + 1) * d].sum()
                for kv in range(2)
            ]
        ).double()
        got = head_scores(layout, importance.totals)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-12)
    # the step itself: channels and heads chosen from those scores, bit for bit the same with
    # one pass over the batches as with a pass per chunk
    whole_model, whole = tiny_llama()
    monkeypatch.setattr(calibration, "SUM_BUDGET", 10**9)
    whole.prune_to(whole_model, 0.5, batches, task)
    monkeypatch.setattr(calibration, "SUM_BUDGET", 5000)
    pruner.prune_to(model, 0.5, iter(batches), task)
    assert pruner.state()[1] == whole.state()[1]
    assert pruner.state()[1]["head_cuts"]


def test_a_criterion_written_with_weight_scores_only_still_scores_groups_and_none_is_clear():
    """The base class's two spellings fall back on each other: a criterion that defines only
    `weight_scores` hands them over one by one (the same totals as its own scores give), and one
    that defines neither says so instead of recursing."""
    from prunebench.criteria.base import Criterion
    from prunebench.criteria.groups import reduce_scores

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3))
    params = {"0.weight": model[0].weight, "1.weight": model[1].weight}

    class Squares(Criterion):
        name = "squares"

        def weight_scores(self, model, params, batches=None, task=None):
            return {n: p.detach().square() for n, p in params.items()}

    got = Squares().group_importance(model, params).totals
    expected = reduce_scores(model, [(n, p.detach().square()) for n, p in params.items()])
    assert set(got) == {model[0], model[1]}
    for layer, totals in expected.items():
        assert torch.equal(got[layer].out, totals.out) and torch.equal(got[layer].inp, totals.inp)
    assert torch.equal(got[model[0]].out, model[0].weight.detach().square().sum(1))
    with pytest.raises(NotImplementedError, match="'criterion' defines no scores"):
        Criterion().weight_scores(model, params)
