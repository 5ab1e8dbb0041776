"""ONNX export of an exported pruned model, checked with onnxruntime, and ORT latency.

`write_onnx(directory)` rebuilds the model of an export directory (`export.load_pruned`: no
pickle, hashes checked), exports it with torch's ONNX exporter (torch.export based; the batch
dimension is dynamic where the model allows it) to `model.onnx` beside structure.json, then runs
a random batch through onnxruntime and PyTorch and refuses the file unless every output is
within `tolerance` of PyTorch's (|ort - torch| <= tol * max(1, |torch|)).

Structured runs give the physically smaller graph. Unstructured runs give the dense graph with
the pruned weights stored as zeros: dense runtimes (onnxruntime included) compute them anyway,
so the file says so in its metadata and the CLI says it too. The metadata also holds
`prunebench.preprocessing` (JSON): the input preprocessing of export/preprocess.py, which the
graph expects to have been applied.

Only the generic parts of a model are used: its registry spec's example inputs (a token batch
for language models, an image batch otherwise) and the logits of its output (`.logits` of a
Hugging Face output), so a model source that builds through the registry exports the same way.
Needs the `onnx` extra (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prunebench.config.loading import validate
from prunebench.config.schema import ModelConfig
from prunebench.data.info import DataInfo
from prunebench.errors import PrunebenchError
from prunebench.export.pruned import load_pruned, read_description
from prunebench.models.build import model_spec
from prunebench.outputs import write_file
from prunebench.pruning.factory import example_inputs
from prunebench.tasks import logits_of

ONNX_FILE = "model.onnx"
TOLERANCE = 1e-4
PACKAGES = ("onnx", "onnxscript", "onnxruntime")
DENSE_NOTE = (
    "unstructured pruning: the ONNX graph holds dense weights with their zeros; dense runtimes "
    "(onnxruntime included) compute them anyway, so it runs no faster than the dense model"
)


def check_installed() -> None:
    missing = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise PrunebenchError(
            f"--format onnx needs {', '.join(missing)}: pip install 'prunebench[onnx]'"
        )


class Logits(nn.Module):
    """The model with its output reduced to one tensor of logits (ONNX has no dataclasses)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model(inputs))


def random_batch(example: torch.Tensor, info: DataInfo, batch: int, seed: int = 0) -> torch.Tensor:
    """A random batch shaped like `example` (batch 1): token ids below the vocabulary size for
    integer inputs, standard normal values otherwise."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, *example.shape[1:])
    if example.dtype.is_floating_point:
        return torch.randn(shape, generator=generator, dtype=example.dtype)
    high = info.vocab_size or int(example.max()) + 1
    return torch.randint(0, high, shape, generator=generator, dtype=example.dtype)


def _export(module: nn.Module, inputs: torch.Tensor, path: Path, dynamic: bool) -> None:
    import warnings

    shapes = ({0: torch.export.Dim.DYNAMIC},) if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter (deprecations inside libraries)
        program = torch.onnx.export(
            module,
            (inputs,),
            dynamo=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=shapes,
            verbose=False,
        )
    program.save(str(path))


def to_onnx(model: nn.Module, inputs: torch.Tensor, path: Path | str) -> bool:
    """Export `model` (eval, CPU) for `inputs`; returns whether the batch size is dynamic (a
    model whose code fixes it is exported for this batch size only)."""
    path = Path(path)
    module = Logits(copy.deepcopy(model).eval().cpu())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            _export(module, inputs, tmp, dynamic=True)
            dynamic = True
        except Exception:
            _export(module, inputs, tmp, dynamic=False)
            dynamic = False
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return dynamic


def session(path: Path | str, threads: int = 1):
    """An onnxruntime CPU session with all graph optimizations (BatchNorm folding, fusions)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OrtModule:
    """Calls an onnxruntime session like a module: a torch tensor in, a torch tensor out."""

    def __init__(self, path: Path | str, threads: int = 1) -> None:
        self.session = session(path, threads)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input: inputs.numpy()})[0])


def max_difference(model: nn.Module, path: Path | str, inputs: torch.Tensor) -> float:
    """Largest |ort - torch| / max(1, |torch|) over the logits of `inputs`."""
    with torch.inference_mode():
        expected = Logits(model.eval()).cpu()(inputs).float().numpy()
    got = OrtModule(path)(inputs).numpy()
    if got.shape != expected.shape:
        raise PrunebenchError(f"onnxruntime gave shape {got.shape}, PyTorch {expected.shape}")
    return float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))


@dataclass
class OnnxExport:
    path: Path
    structure: str
    batch: tuple[int, ...]
    dynamic_batch: bool
    max_difference: float
    seconds: float
    note: str | None  # what a reader must know (unstructured: no speed-up in dense runtimes)


def _annotate(path: Path, properties: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    for key, value in properties.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    write_file(path, model.SerializeToString())


def write_onnx(
    directory: Path | str, batch: int = 8, tolerance: float = TOLERANCE, seed: int = 0
) -> OnnxExport:
    """`model.onnx` for the export in `directory`, checked in onnxruntime on a random batch."""
    check_installed()
    started = time.perf_counter()
    directory = Path(directory)
    description = read_description(directory)
    model = load_pruned(directory)
    info = DataInfo(**description["data_info"])
    spec = model_spec(validate(ModelConfig, description["model"], "export (model)"))
    inputs = random_batch(example_inputs(spec, info), info, batch, seed)
    path = directory / ONNX_FILE
    try:
        dynamic = to_onnx(model, inputs, path)
    except Exception as exc:
        raise PrunebenchError(
            f"torch could not export '{description['model']['name']}' to ONNX: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        ) from exc
    difference = max_difference(model, path, inputs)
    if not difference <= tolerance:
        path.unlink(missing_ok=True)
        raise PrunebenchError(
            f"the ONNX export differs from PyTorch by {difference:.2e} in onnxruntime "
            f"(tolerance {tolerance:g}); nothing was written"
        )
    structure = description["structure"]
    note = DENSE_NOTE if structure == "unstructured" else None
    source = description.get("source", {})
    _annotate(
        path,
        {
            "prunebench.structure": structure,
            "prunebench.model": description["model"]["name"],
            "prunebench.run_id": str(source.get("run_id", "")),
            "prunebench.step": str(source.get("step", "")),
            "prunebench.onnxruntime_max_difference": f"{difference:.3e}",
            # the graph takes preprocessed inputs; this is how to make them from raw ones
            "prunebench.preprocessing": json.dumps(info.preprocessing, sort_keys=True),
            **({"prunebench.note": note} if note else {}),
        },
    )
    return OnnxExport(
        path,
        structure,
        tuple(inputs.shape),
        dynamic,
        difference,
        time.perf_counter() - started,
        note,
    )


def describe(result: Any) -> str:
    """One line for the CLI."""
    shape = "x".join(str(d) for d in result.batch)
    batch = "dynamic batch" if result.dynamic_batch else f"fixed batch {result.batch[0]}"
    return (
        f"{result.path.name}: onnxruntime matches PyTorch within {result.max_difference:.1e} "
        f"on a random {shape} batch ({batch})"
    )
