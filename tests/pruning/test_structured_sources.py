"""Structured pruning of models prunebench has no hooks for: grouped and depthwise convolutions
with every criterion (group scores against a brute-force count), a classifier that is a Conv2d,
the output shape kept, graph-building failures in one line, and StructuredPruner.for_model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import prunebench
from prunebench.config.schema import PruneConfig
from prunebench.criteria.catalog import CRITERIA, make_criterion
from prunebench.errors import PrunebenchError
from prunebench.pruning.channel_groups import unit_scores
from prunebench.pruning.guard import GraphBudgetExceeded, graph_budget
from prunebench.tasks import make_task

TASK = make_task("classification")


class Grouped(nn.Module):
    """Grouped (4 groups) and depthwise convolutions, a Conv2d classifier as SqueezeNet's."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.grouped = nn.Sequential(
            nn.Conv2d(16, 32, 3, padding=1, groups=4), nn.BatchNorm2d(32), nn.ReLU()
        )
        self.depthwise = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.BatchNorm2d(32), nn.ReLU()
        )
        self.mix = nn.Sequential(nn.Conv2d(32, 24, 1), nn.BatchNorm2d(24), nn.ReLU())
        self.final = nn.Conv2d(24, classes, 1)  # the classifier: a convolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mix(self.depthwise(self.grouped(self.stem(x))))
        return nn.functional.adaptive_avg_pool2d(self.final(x), 1).flatten(1)


def model_and_batch(seed: int = 0):
    torch.manual_seed(seed)
    model = Grouped()
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 5, (6,))
    model.train()
    for _ in range(2):  # non-trivial BatchNorm statistics and weights
        model(x)
    return model, x, y


STRUCTURED = [n for n in CRITERIA.names() if CRITERIA.fact(n, "structured")]


@pytest.mark.parametrize("criterion", STRUCTURED)
def test_grouped_and_depthwise_convs_with_every_criterion(criterion):
    model, x, y = model_and_batch()
    pruner = prunebench.StructuredPruner.for_model(model, x[:1], criterion=criterion)
    assert pruner.ignored == {"final": "classifier outputs (classes) are never pruned"}
    model = pruner.prune_to(model, 0.5, [(x, y)], TASK)
    assert model(x).shape == (6, 5)
    TASK.loss(model, (x, y)).backward()
    assert model.grouped[0].out_channels % 4 == 0  # whole units: one channel in every group
    assert model.depthwise[0].groups == model.depthwise[0].out_channels
    assert pruner.measure(model)["achieved_sparsity"] == pytest.approx(0.5, abs=0.05)


def removed_score(model, pruner, group, unit, scores, example):
    """Brute force: each scored weight replaced by its score, the unit pruned by Torch-Pruning
    on a copy; the score mass that disappeared is what pruning the unit takes away."""
    import torch_pruning as tp

    work = copy.deepcopy(model)
    for name, param in work.named_parameters():
        param.data = scores[name].clone() if name in scores else torch.zeros_like(param)
    before = sum(p.detach().double().sum() for p in work.parameters())
    dg = tp.DependencyGraph().build_dependency(work, example)
    module = dict(work.named_modules())[group.root]
    total = dg.get_out_channels(module)
    idxs = list(range(unit, total, group.original))  # the unit in every channel group
    dg.get_pruning_group(module, dg.get_pruner_of_module(module).prune_out_channels, idxs).prune()
    return float(before - sum(p.detach().double().sum() for p in work.parameters()))


@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
def test_group_scores_are_the_sum_over_everything_a_unit_removes(criterion):
    model, x, y = model_and_batch()
    pruner = prunebench.StructuredPruner.for_model(model, x[:1], criterion=criterion)
    params = pruner.scored_params(model)
    scores = make_criterion(criterion).weight_scores(model, params, [(x, y)], TASK)
    importance = make_criterion(criterion).group_importance(model, params, [(x, y)], TASK)
    for group in pruner.groups:
        mine = unit_scores(pruner.graph, pruner.graph.full_group(group.module), importance)
        for unit in (0, group.original - 1):
            brute = removed_score(model, pruner, group, unit, scores, x[:1])
            assert float(mine[unit]) == pytest.approx(brute, rel=1e-4), (group.root, unit)


def test_unstructured_exclude_classifier_finds_a_conv_classifier():
    model, x, _ = model_and_batch()
    final = model.final.weight.detach().clone()
    pruner = prunebench.UnstructuredPruner.for_model(
        model, example_inputs=x[:1], exclude_classifier=True
    )
    assert "final.weight" not in pruner.prunable.names
    assert "classifier" in pruner.prunable.excluded["final.weight"]
    pruner.prune_to(model, 0.8)
    assert torch.equal(model.final.weight, final)
    # without example inputs the classifier is found in the torch.fx graph
    fx = prunebench.UnstructuredPruner.for_model(model_and_batch()[0], exclude_classifier=True)
    assert "final.weight" not in fx.prunable.names


def test_a_wrong_classifier_cannot_change_the_output_shape():
    model, x, _ = model_and_batch()
    pruner = prunebench.StructuredPruner.for_model(
        model, x[:1], classifier="stem.0", group_normalizer="none"
    )
    with pytest.raises(PrunebenchError, match=r"changed its output shape from \(1, 5\) to"):
        pruner.prune_to(model, 0.9)


def test_graph_budget_stops_runaway_work_within_its_cpu_time():
    budget = graph_budget(seconds=0.3)
    with pytest.raises(GraphBudgetExceeded, match=r"more than 0\.3 s of CPU time"), budget:
        while True:
            sum(range(1000))


def test_graph_budget_also_guards_other_threads():
    import threading

    caught: list[Exception] = []

    def work() -> None:
        try:
            with graph_budget(seconds=0.3):
                while True:
                    sum(range(1000))
        except GraphBudgetExceeded as exc:
            caught.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and caught


def test_graph_building_over_budget_is_one_line(monkeypatch):
    from torchvision.models import squeezenet1_1  # its graph takes >10 ms of CPU to build

    monkeypatch.setenv("PRUNEBENCH_GRAPH_SECONDS", "0")
    cfg = PruneConfig(structure="structured")
    with pytest.raises(PrunebenchError) as info:
        prunebench.StructuredPruner(
            squeezenet1_1(num_classes=3),
            cfg,
            make_criterion("magnitude"),
            torch.zeros(1, 3, 32, 32),
        )
    message = str(info.value)
    assert "Torch-Pruning cannot build its dependency graph (it used more than 0 s" in message
    assert message.endswith("prune it with prune.structure=unstructured")
    assert "\n" not in message


class WindowAttention(nn.Module):
    """An attention layout no hook knows (fused qkv read with a fixed head count)."""

    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).unbind(2)
        attn = torch.softmax(q.transpose(1, 2) @ k.transpose(1, 2).transpose(-1, -2), dim=-1)
        return self.proj((attn @ v.transpose(1, 2)).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = WindowAttention()
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return self.head((x + self.mlp(x)).mean(1))


def test_attention_without_a_hook_keeps_its_heads_and_mlps_are_pruned():
    torch.manual_seed(0)
    model, x = Block(), torch.randn(2, 5, 16)
    pruner = prunebench.StructuredPruner.for_model(model, x, exclude=["attn.proj"])
    assert pruner.ignored["attn.qkv"] == (
        "attention heads of WindowAttention 'attn' are kept (no head-pruning hook for it); "
        "MLP widths are still pruned"
    )
    model = pruner.prune_to(model, 0.5)
    assert model.attn.qkv.out_features == 48 and model.mlp[0].out_features < 32
    assert model(x).shape == (2, 3)


def test_attention_without_a_hook_keeps_the_width_it_reads_unasked():
    """WindowAttention reads its head size from the input width: the residual around it stays
    (its output projection is kept with the reason) without the user excluding anything."""
    torch.manual_seed(0)
    model, x = Block(), torch.randn(2, 5, 16)
    pruner = prunebench.StructuredPruner.for_model(model, x)
    assert pruner.ignored["attn.proj"] == (
        "the width that WindowAttention 'attn' reads is kept (no head-pruning hook for it)"
    )
    model = pruner.prune_to(model, 0.5)
    assert model.attn.proj.out_features == 16 and model.mlp[0].out_features < 32
    assert model(x).shape == (2, 3)


def test_python_builder_attributes_fill_its_spec(tmp_path, monkeypatch):
    from own_data import MODEL_FILE, write_module
    from prunebench.config.schema import ModelConfig
    from prunebench.data.info import DataInfo
    from prunebench.models.build import build_model, model_spec

    monkeypatch.chdir(tmp_path)
    write_module(tmp_path, "mine", MODEL_FILE + (
        "\nbuild.classifier = 'features.0'\n"
        "build.example_inputs = lambda info: torch.ones(1, info.in_channels, 4, 4)\n"
        "build.task = 'classification'\n"
    ))  # fmt: skip
    cfg = ModelConfig(name="python:mine.py:build", options={"width": 4})
    spec = model_spec(cfg)
    assert (spec.classifier, spec.task) == ("features.0", "classification")
    info = DataInfo("classification", num_classes=3, in_channels=3, image_size=8)
    assert spec.example_inputs(info).shape == (1, 3, 4, 4)
    assert spec.structured is not None  # hooks chosen from the built module
    assert isinstance(build_model(cfg, info), nn.Module)
    lm = DataInfo("causal_lm", vocab_size=10, seq_len=4)
    with pytest.raises(PrunebenchError, match="is a classification model but the data is"):
        build_model(cfg, lm)
