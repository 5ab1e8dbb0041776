"""ONNX export: every registered model, structurally pruned, runs in onnxruntime within 1e-4 of
PyTorch (logits); unstructured exports keep their zeros and say so; the CLI's --format onnx."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prunebench.config.schema import DataConfig, ModelConfig, PruneConfig
from prunebench.data import DataInfo
from prunebench.data.arrays import build_arrays
from prunebench.export.onnx import DENSE_NOTE, ONNX_FILE, OrtModule, write_onnx
from prunebench.export.preprocess import Preprocess
from prunebench.export.pruned import export_model
from prunebench.models import MODELS
from prunebench.models.build import build_model, model_spec
from prunebench.pruning.factory import make_pruner

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install '.[onnx]'")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed")

IMAGES = DataInfo(task="classification", num_classes=10, in_channels=3, image_size=32)
TOKENS = DataInfo(task="causal_lm", vocab_size=64, seq_len=16)
# Small variants (as in test_model_registry); the ONNX path is the same for the full sizes.
OPTIONS: dict[str, dict] = {
    "digits_cnn": {"width": 8},
    "resnet18_cifar": {"width": 8},
    "efficientnet_v2_s": {"stages": 4},
    "vit_small_patch16_224": {"patch_size": 8, "depth": 2},
}
SKIP = {"resnet18": "the ImageNet ResNet-18 exports like resnet18_cifar (same blocks); too slow"}


def exported(name: str, structure: str, out, target: float = 0.5):
    """A pruned model of the registry written as an export directory."""
    info = TOKENS if MODELS.get(name).task == "causal_lm" else IMAGES
    model_cfg = ModelConfig(name=name, options=OPTIONS.get(name, {}))
    extra = {"scope": "layerwise", "latency": False} if structure == "structured" else {}
    prune_cfg = PruneConfig(structure=structure, **extra)
    torch.manual_seed(0)
    model = MODELS.get(name).build(info, **OPTIONS.get(name, {}))
    pruner = make_pruner(prune_cfg, model, MODELS.get(name), info)
    model = pruner.prune_to(model, target) or model
    tensors, meta = pruner.state()
    export_model(model.eval(), out, model_cfg, prune_cfg, info, meta, masks=tensors or None)
    return model.eval(), info


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in MODELS.names() if n not in SKIP])
def test_structured_exports_run_in_onnxruntime_like_pytorch(name, tmp_path):
    model, info = exported(name, "structured", tmp_path)
    result = write_onnx(tmp_path, batch=4)
    assert result.path == tmp_path / ONNX_FILE and result.note is None
    assert result.max_difference <= 1e-4
    # the physically smaller graph: the weights it holds by name have the pruned shapes, and it
    # holds fewer numbers than the dense model (parameters and buffers, e.g. attention masks)
    graph = onnx.load(str(result.path)).graph
    shapes = {t.name.removeprefix("model."): tuple(t.dims) for t in graph.initializer}
    params = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert all(shapes[n] == params[n] for n in params if n in shapes)
    torch.manual_seed(0)
    dense = MODELS.get(name).build(info, **OPTIONS.get(name, {}))
    stored = sum(onnx.numpy_helper.to_array(t).size for t in graph.initializer)
    assert stored < sum(t.numel() for t in [*dense.parameters(), *dense.buffers()])
    # the batch size is not baked in where the model allows it
    if result.dynamic_batch:
        inputs = result.batch
        other = (7, *inputs[1:])
        ort = OrtModule(result.path)
        x = (
            torch.randint(0, info.vocab_size, other)
            if info.task == "causal_lm"
            else torch.randn(other)
        )
        assert ort(x).shape[0] == 7


def test_unstructured_exports_keep_their_zeros_and_say_so(tmp_path):
    model, _ = exported("digits_cnn", "unstructured", tmp_path, target=0.8)
    result = write_onnx(tmp_path)
    assert result.note == DENSE_NOTE and result.max_difference <= 1e-4
    proto = onnx.load(str(result.path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["prunebench.structure"] == "unstructured" and "no faster" in meta["prunebench.note"]
    weights = [onnx.numpy_helper.to_array(t) for t in proto.graph.initializer]
    total = sum(w.size for w in weights if w.ndim > 1)
    zeros = sum(int((w == 0).sum()) for w in weights if w.ndim > 1)
    assert total == sum(p.numel() for p in model.parameters() if p.dim() > 1)  # dense shapes
    assert zeros / total > 0.7


@pytest.mark.slow
def test_the_cli_exports_onnx_beside_the_safetensors(tmp_path, tiny, invoke):
    from prunebench.engine.single_run import run
    from prunebench.store.database import Store

    cfg = tiny("prune.structure=structured", "prune.scope=layerwise", "prune.latency=false")
    result = run(cfg, Store(tmp_path / "r"))
    code, out, err = invoke(
        "export", str(tmp_path / "r"), str(tmp_path / "e"), "--run", result.run_id[:8], "-f", "onnx"
    )
    assert code == 0, err
    assert {p.name for p in (tmp_path / "e").iterdir()} == {
        "structure.json",
        "weights.safetensors",
        "model.onnx",
    }
    assert "onnxruntime matches PyTorch within" in out
    code, _, err = invoke(
        "export", str(tmp_path / "r"), str(tmp_path / "x"), "--run", "0", "-f", "tf"
    )
    assert code == 2 and "--format must be safetensors, onnx or hf" in err


BUILDER = """
from torch import nn


def build(info, width=8):
    return nn.Sequential(
        nn.Conv2d(info.in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, groups=width, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, info.num_classes),
    )
"""


def source_config(source: str, tmp_path) -> tuple[ModelConfig, DataInfo]:
    """The model sources of `model.name`, each in a small variant."""
    if source == "python":
        (tmp_path / "builder.py").write_text(BUILDER)
        return ModelConfig(name=f"python:{tmp_path / 'builder.py'}:build"), IMAGES
    if source == "hf":
        path = tmp_path / "gpt2.json"
        config = {"model_type": "gpt2", "vocab_size": 64, "n_embd": 32, "n_layer": 2,
                  "n_head": 4, "n_positions": 32, "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip
        path.write_text(json.dumps(config))
        return ModelConfig(name="hf", options={"config": str(path)}), TOKENS
    return ModelConfig(name=source), IMAGES


@pytest.mark.parametrize(
    "source", ["torchvision:mobilenet_v3_small", "timm:resnet10t", "python", "hf"]
)
@pytest.mark.slow
def test_model_sources_export_to_onnxruntime_like_pytorch(source, tmp_path):
    """The 'your own model' sources, structurally pruned: the same check as the registry's."""
    model_cfg, info = source_config(source, tmp_path)
    prune_cfg = PruneConfig(structure="structured", scope="layerwise", latency=False)
    torch.manual_seed(0)
    model = build_model(model_cfg, info)
    pruner = make_pruner(prune_cfg, model, model_spec(model_cfg), info)
    model = pruner.prune_to(model, 0.5)
    _, meta = pruner.state()
    out = tmp_path / "export"
    export_model(model.eval(), out, model_cfg, prune_cfg, info, meta)
    result = write_onnx(out, batch=2)
    assert result.max_difference <= 1e-4
    graph = onnx.load(str(result.path)).graph
    stored = sum(onnx.numpy_helper.to_array(t).size for t in graph.initializer)
    assert stored < sum(p.numel() for p in build_model(model_cfg, info).parameters()) + sum(
        b.numel() for b in model.buffers()
    )


def test_the_onnx_metadata_preprocessing_turns_raw_arrays_into_the_graph_inputs(tmp_path):
    """A reader with only model.onnx: the recorded preprocessing, applied to the raw uint8 NHWC
    test images, gives inputs on which onnxruntime answers as PyTorch does on the data source's
    own test batch."""
    rng = np.random.default_rng(3)
    pictures = rng.integers(0, 256, size=(60, 12, 12, 3), dtype=np.uint8)
    labels = np.arange(60) % 2
    root = tmp_path / "img.npz"
    np.savez(root, x_train=pictures[:40], y_train=labels[:40], x_test=pictures[40:],
             y_test=labels[40:])  # fmt: skip
    cfg = DataConfig(name="arrays", root=root, batch_size=4, eval_batch_size=100, image_size=8)
    bundle = build_arrays(cfg, torch.device("cpu"))
    torch.manual_seed(0)
    model = MODELS.get("digits_cnn").build(bundle.info, width=8).eval()
    out = tmp_path / "export"
    export_model(model, out, ModelConfig(name="digits_cnn", options={"width": 8}),
                 PruneConfig(), bundle.info, {})  # fmt: skip
    result = write_onnx(out)
    meta = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    steps = json.loads(meta["prunebench.preprocessing"])
    assert steps == bundle.info.preprocessing and steps["kind"] == "image"
    graph_inputs = Preprocess(steps)(pictures[40:]).numpy()
    ((source_batch, _),) = list(bundle.test)
    with torch.no_grad():
        expected = model(source_batch).numpy()
    got = OrtModule(result.path)(torch.from_numpy(graph_inputs))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4)
