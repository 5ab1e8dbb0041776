"""Export / reload of pruned models: bit-exact, sparse storage, no pickle, tampering refused."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors import safe_open

import prunebench
from prunebench.engine.dense_models import stored_dense
from prunebench.engine.single_run import run
from prunebench.engine.workspace import Workspace
from prunebench.errors import CheckpointError, PrunebenchError
from prunebench.export.pruned import STRUCTURE_FILE, WEIGHTS_FILE, export_step, read_description
from prunebench.pruning.masks import count_to_prune
from prunebench.store.database import Store

FAST = ["pretrain.epochs=3", "finetune.max_epochs=1", "prune.latency=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step structured run and a 2-step unstructured run in one results directory."""
    from conftest import tiny_config

    root = tmp_path_factory.mktemp("export-runs")
    store = Store(root)
    structured = tiny_config(*FAST, "prune.structure=structured", "prune.scope=layerwise")
    unstructured = tiny_config(*FAST)
    return root, {
        "structured": (structured, run(structured, store)),
        "unstructured": (unstructured, run(unstructured, store)),
    }


def reference(root, cfg, step_key):
    store = Store(root)
    ctx = Workspace(stored_dense(store)).context(cfg)
    model, _ = ctx.restore(*store.load_checkpoint(step_key))
    return model.eval(), ctx.data


@pytest.mark.parametrize("kind", ["structured", "unstructured"])
@pytest.mark.parametrize("step", [1, 2])
def test_export_reloads_bit_exactly(runs, tmp_path, kind, step):
    root, by_kind = runs
    cfg, result = by_kind[kind]
    export_step(root, result.run_id[:10], step, tmp_path / "out")
    model = prunebench.load_pruned(tmp_path / "out")
    ref, data = reference(root, cfg, result.rows[step - 1]["step_key"])
    assert not model.training
    for inputs, _ in data.test:
        assert torch.equal(model(inputs), ref(inputs))
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    description = read_description(tmp_path / "out")
    assert description["source"]["step"] == step and description["structure"] == kind


def test_unstructured_export_stores_only_the_kept_weights(runs, tmp_path):
    root, by_kind = runs
    _, result = by_kind["unstructured"]
    export_step(root, result.run_id, None, tmp_path / "out")  # default: the last step
    description = read_description(tmp_path / "out")
    assert description["source"]["step"] == 2
    model = prunebench.load_pruned(tmp_path / "out")
    with safe_open(str(tmp_path / "out" / WEIGHTS_FILE), framework="pt") as handle:
        stored = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    params = dict(model.named_parameters())
    assert set(description["sparse"]) == {
        "features.0.weight",
        "features.3.weight",
        "features.7.weight",
        "classifier.weight",
    }
    for name in description["sparse"]:
        assert name not in stored
        assert stored[name + "::values"].numel() == int(torch.count_nonzero(params[name]))
        assert stored[name + "::keepbits"].dtype == torch.uint8
    total = sum(stored[n + "::values"].numel() for n in description["sparse"])
    dense = sum(params[n].numel() for n in description["sparse"])
    assert total == dense - count_to_prune(0.8, dense)  # tiny config: global target 0.8


def test_loading_never_unpickles(runs, tmp_path, monkeypatch):
    root, by_kind = runs
    _, result = by_kind["structured"]
    export_step(root, result.run_id, 2, tmp_path / "out")

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    cfg, _ = by_kind["structured"]
    ref, data = reference(root, cfg, result.rows[1]["step_key"])
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    model = prunebench.load_pruned(tmp_path / "out")
    inputs, _ = next(iter(data.test))
    assert torch.equal(model(inputs), ref(inputs))  # loaded in full, with no pickle at all


def test_tampered_or_swapped_files_are_refused(runs, tmp_path):
    root, by_kind = runs
    _, structured = by_kind["structured"]
    _, unstructured = by_kind["unstructured"]
    a, b = tmp_path / "a", tmp_path / "b"
    export_step(root, structured.run_id, 2, a)
    export_step(root, unstructured.run_id, 2, b)

    weights = (a / WEIGHTS_FILE).read_bytes()
    (a / WEIGHTS_FILE).write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="sha256"):
        prunebench.load_pruned(a)
    (a / WEIGHTS_FILE).write_bytes(weights)

    text = (a / STRUCTURE_FILE).read_text()
    description = json.loads(text)
    description["pruning"]["history"][0][2][0] += 1  # another channel index
    (a / STRUCTURE_FILE).write_text(json.dumps(description))
    with pytest.raises(CheckpointError, match="modified after export"):
        prunebench.load_pruned(a)
    (a / STRUCTURE_FILE).write_text(text)

    (a / WEIGHTS_FILE).write_bytes((b / WEIGHTS_FILE).read_bytes())  # swapped in
    with pytest.raises(CheckpointError, match="sha256"):
        prunebench.load_pruned(a)
    (a / WEIGHTS_FILE).write_bytes(weights)
    prunebench.load_pruned(a)  # intact again

    with pytest.raises(CheckpointError, match=r"holds no structure\.json"):
        prunebench.load_pruned(tmp_path)


def test_export_errors_name_the_problem(runs, tmp_path):
    root, by_kind = runs
    _, result = by_kind["structured"]
    with pytest.raises(PrunebenchError, match="no run 'ffffffff'"):
        export_step(root, "ffffffff", 1, tmp_path / "x")
    with pytest.raises(PrunebenchError, match="has steps 1, 2, not 7"):
        export_step(root, result.run_id, 7, tmp_path / "x")


def test_cli_export(runs, tmp_path, invoke):
    root, by_kind = runs
    _, result = by_kind["structured"]
    code, out, err = invoke(
        "export", str(root), str(tmp_path / "out"), "--run", result.run_id[:8], "--step", "1"
    )
    assert code == 0, err
    assert "exported to" in out and read_description(tmp_path / "out")["source"]["step"] == 1
    code, _, err = invoke("export", str(root), str(tmp_path / "out2"), "--run", "nope")
    assert code == 2 and "no run 'nope'" in err and not (tmp_path / "out2").exists()
    # no --run: the only run of a directory, or a clear line where there are several
    code, _, err = invoke("export", str(root), str(tmp_path / "out3"))
    assert code == 2 and "these results hold 2 runs: pick one with --run" in err
    assert not (tmp_path / "out3").exists()
    cfg, alone = by_kind["unstructured"][0], tmp_path / "one"
    only = run(cfg, Store(alone))
    code, out, err = invoke("export", str(alone), str(tmp_path / "out4"))
    assert code == 0, err
    assert read_description(tmp_path / "out4")["source"]["run_id"] == only.run_id


def test_a_model_onnx_of_an_earlier_export_is_not_left_beside_other_weights(runs, tmp_path, invoke):
    root, by_kind = runs
    _, result = by_kind["structured"]
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"an earlier export's graph")
    code, _, err = invoke("export", str(root), str(folder), "--run", result.run_id, "--step", "1")
    assert code == 2 and "holds model.onnx from an earlier export" in err
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx"]  # nothing written
