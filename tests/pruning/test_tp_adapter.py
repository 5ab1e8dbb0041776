"""The Torch-Pruning internals that pruning/tp_adapter.py relies on are there and behave
(pruning/tp_internals.py checks them)."""

from __future__ import annotations

import ast
from pathlib import Path

from prunebench.pruning import tp_adapter, tp_internals


def test_installed_torch_pruning_has_the_internals_the_adapter_was_written_for():
    problems = tp_internals.check_internals()
    assert problems == [], "Torch-Pruning changed: " + "; ".join(problems)


def test_a_missing_private_member_is_named(monkeypatch):
    monkeypatch.delattr(tp_internals.CLASSES["MetaPruner"], "_get_channel_groups")
    assert tp_internals.check_internals() == ["MetaPruner._get_channel_groups is missing"]


def test_a_changed_signature_is_named(monkeypatch):
    def get_pruning_group(self, layer, fn, idxs):
        raise AssertionError("not called")

    monkeypatch.setattr(
        tp_internals.CLASSES["DependencyGraph"], "get_pruning_group", get_pruning_group
    )
    (problem,) = tp_internals.check_internals()
    assert problem.startswith("DependencyGraph.get_pruning_group takes ('self', 'layer', 'fn'")


def test_a_changed_behaviour_is_named(monkeypatch):
    monkeypatch.setattr(
        tp_internals.CLASSES["MetaPruner"], "_get_channel_groups", lambda self, group: 1
    )
    problems = tp_internals.check_internals()
    assert "_get_channel_groups does not see the grouped conv's 2 groups" in problems


def test_the_version_is_the_pinned_one(monkeypatch):
    monkeypatch.setattr(tp_internals, "version", lambda name: "9.9.9")
    problems = tp_internals.check_internals()
    assert problems[0] == "torch-pruning is 9.9.9, this adapter was written for 1.6.1"


def test_only_the_adapter_and_its_check_import_torch_pruning():
    src = Path(tp_adapter.__file__).parents[1]
    importers = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(name.split(".")[0] == "torch_pruning" for name in names):
                importers.add(path.relative_to(src).as_posix())
    assert importers == {"pruning/tp_adapter.py", "pruning/tp_internals.py"}


def test_the_built_graph_keeps_no_activation_of_its_traced_forward_alive():
    """Torch-Pruning's nodes hold the traced autograd nodes, and with them every tensor the
    traced forward saved for backward (a language model: every layer's activations of one
    example batch); once built, the graph holds TracedOps with only the sizes it reads."""
    import gc
    import weakref

    import torch
    from torch import nn

    class Box:
        def __init__(self, tensor):
            self.tensor = tensor

    saved: list[weakref.ref] = []

    def pack(tensor):
        box = Box(tensor)
        saved.append(weakref.ref(box))
        return box

    # Linear layers only: an op that saves its own output (ReLU) would hold its box in a cycle
    # through autograd's C++ side that only this test's hook creates
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.tensor):
        graph = tp_adapter.ChannelGraph(model, torch.zeros(2, 4), {}, [model[1]])
    gc.collect()
    assert saved and all(ref() is None for ref in saved)
    nodes = graph.dg.module2node.values()
    assert all(isinstance(n.grad_fn, tp_adapter.TracedOp | None) for n in nodes)
    assert graph.prune(model[0], [1, 2]) and model[1].in_features == 6  # still prunes
