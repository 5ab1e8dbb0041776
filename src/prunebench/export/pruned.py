"""Safe export of a pruned model: safetensors weights + a JSON description, never a pickle.

An export directory holds
    structure.json        model name/options, data info (with `preprocessing`: what turns a
                          raw input into the model's input, export/preprocess.py), the pruning structure (Torch-Pruning
                          history: layer names + removed channel indices; or the sparse layout),
                          where it came from, and the sha256 of the weights file;
    weights.safetensors   the weights; for unstructured pruning each masked tensor is stored as
                          its kept values plus a bit-packed keep mask (its metadata holds the
                          sha256 of the structure description).
`load_pruned` builds the dense architecture from the registry, replays the structure and loads
the weights, so the module equals the exported one bit for bit on CPU. The two hashes refuse a
weights file or a description that was changed or swapped after export.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from prunebench.config.loading import validate
from prunebench.config.schema import ModelConfig, PruneConfig
from prunebench.config.source_names import hf_config_file, parse
from prunebench.data.info import DataInfo
from prunebench.engine.pruned_state import rebuild, restore, stored_masks
from prunebench.errors import CheckpointError, ChecksumMismatch, PrunebenchError
from prunebench.export.preprocess import Preprocess, RawInputModel
from prunebench.models.build import build_model
from prunebench.models.catalog import MODELS
from prunebench.outputs import write_file
from prunebench.store.checkpoints import check_fits, load_tensors, save_tensors, sha256_file
from prunebench.store.database import open_existing
from prunebench.store.digests import digest_ok
from prunebench.store.results import find_run, load_results, require_runs

FORMAT = "prunebench-pruned/1"
STRUCTURE_FILE = "structure.json"
WEIGHTS_FILE = "weights.safetensors"
VALUES, BITS = "::values", "::keepbits"
PRUNING_KEYS = ("history", "num_heads", "head_cuts")  # what rebuilds a structured model


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------------- from a results directory


@dataclass
class StoredStep:
    """A stored step brought back: the pruned model (CPU) and what describes it."""

    model: nn.Module
    config: dict[str, Any]  # the run's stored config
    model_cfg: ModelConfig
    prune_cfg: PruneConfig
    info: DataInfo
    pruner_meta: dict[str, Any]
    masks: dict[str, torch.Tensor]
    source: dict[str, Any]


def export_step(results: Path | str, run: str, step: int | None, out: Path | str) -> Path:
    """Export the model after step `step` (default: the last stored step) of run `run` (an id
    or a unique prefix of one)."""
    s = load_step(results, run, step)
    return export_model(
        s.model.eval(), out, s.model_cfg, s.prune_cfg, s.info, s.pruner_meta, s.masks, s.source
    )


def load_step(results: Path | str, run: str, step: int | None) -> StoredStep:
    """The model after step `step` (default: the last stored) of run `run`, checked against
    its row's digest and its checkpoint's hashes."""
    df = require_runs(load_results(results), results)
    rid = find_run(df, run)
    steps = df[(df["run_id"] == rid) & df["step"].notna()].sort_values("step")
    if steps.empty:
        raise PrunebenchError(f"run {rid} has no stored steps yet")
    chosen = steps.iloc[-1] if step is None else steps[steps["step"] == step]
    if isinstance(chosen, pd.DataFrame):
        if chosen.empty:
            have = ", ".join(str(int(s)) for s in steps["step"])
            raise PrunebenchError(f"run {rid} has steps {have}, not {step}")
        chosen = chosen.iloc[0]
    config = json.loads(chosen["config_json"])
    prune_cfg = validate(PruneConfig, config["prune"], "stored run config (prune)")
    store = open_existing(results)
    stored = next(r for r in store.steps(rid) if r["step"] == int(chosen["step"]))
    for what, row, table in (("runs row", store.run(rid), "runs"), ("row", stored, "steps")):
        if digest_ok(row, table) is False:  # the runs row holds the config the model is built by
            raise PrunebenchError(
                f"the {what} of run {rid} step {stored['step']} does not match its digest "
                f"(changed after it was written); `prunebench verify {results}` says more"
            )
    if not store.checkpoint_path(chosen["step_key"]).exists():
        raise CheckpointError(f"the checkpoint of step {int(chosen['step'])} is missing")
    try:
        tensors, meta = store.load_checkpoint(chosen["step_key"])
    except ChecksumMismatch as exc:  # export cannot recompute; the driver can
        raise ChecksumMismatch(
            f"{exc}; run the same `prunebench run` / `sweep` again to recompute it, then export"
        ) from None
    model_raw = rebuildable(config["model"], meta.get("model_source"))
    model_cfg = validate(ModelConfig, model_raw, "stored run config (model)")
    pruner_meta = meta.get("pruner", {})
    if "data_info" not in pruner_meta:
        raise CheckpointError("the checkpoint predates exports (no data info); rerun the step")
    info = DataInfo(**pruner_meta["data_info"])
    model, _ = restore(model_cfg, prune_cfg, info, tensors, meta, source="checkpoint")
    masks = stored_masks(tensors)
    metric = chosen["metric"]
    source = {
        "run_id": rid,
        "step": int(chosen["step"]),
        "step_key": chosen["step_key"],
        "target": float(chosen["target"]),
        "regime": chosen["regime"],
        "criterion": chosen["criterion"],
        "test_metric": _plain(chosen.get(f"test_{metric}")),
        "metric": metric,
    }
    return StoredStep(model, config, model_cfg, prune_cfg, info, pruner_meta, masks, source)


def rebuildable(model: dict[str, Any], source: str | None) -> dict[str, Any]:
    """The stored model config as one that rebuilds the architecture in any process, without
    the weights (the export carries its own): a model registered from Python becomes the
    `python:` source recorded with its checkpoints, an `hf` model carries its config inline."""
    name = model["name"]
    out = {k: v for k, v in model.items() if k != "weights"}
    out["options"] = dict(model.get("options") or {})
    if parse(name).registered and not MODELS.is_declared(name):
        if source is not None:
            out["name"] = source
        elif name not in MODELS:
            raise PrunebenchError(
                f"model '{name}' was registered from Python where no other process can import "
                "it (__main__ or a function); define it in a module or file and name it "
                "model.name=python:FILE.py:ATTR"
            )
    if name == "hf" and not isinstance(out["options"].get("config"), dict):
        path = hf_config_file(model.get("weights") and Path(model["weights"]), out["options"])
        if path is None or not path.is_file():
            raise CheckpointError(f"the hf model's config.json ('{path}') is gone")
        out["options"]["config"] = json.loads(path.read_text())
    return out


def _plain(value: Any) -> float | None:
    """A JSON-able number (None for a missing value)."""
    return None if value is None or pd.isna(value) else float(value)


# ---------------------------------------------------------------------- writing


def _pack(weight: torch.Tensor, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    keep = keep.to(torch.bool).cpu().reshape(-1)
    bits = np.packbits(keep.numpy().astype(np.uint8))
    return {
        VALUES: weight.detach().cpu().reshape(-1)[keep].clone(),
        BITS: torch.from_numpy(bits.copy()),
    }


def _unpack(values: torch.Tensor, bits: torch.Tensor, shape: list[int], name: str) -> torch.Tensor:
    numel = int(np.prod(shape)) if shape else 1
    keep = np.unpackbits(bits.numpy(), count=numel).astype(bool)
    if int(keep.sum()) != values.numel():
        raise CheckpointError(f"the sparse weights of '{name}' do not match their keep mask")
    dense = torch.zeros(numel, dtype=values.dtype)
    dense[torch.from_numpy(keep)] = values
    return dense.reshape(shape)


def export_model(
    model: nn.Module,
    out: Path | str,
    model_cfg: ModelConfig,
    prune_cfg: PruneConfig,
    info: DataInfo,
    pruner_meta: dict[str, Any],
    masks: dict[str, torch.Tensor] | None = None,
    source: dict[str, Any] | None = None,
) -> Path:
    """Write `model` (already pruned) to the directory `out`; returns the description's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights_state = model.state_dict()
    masks = masks or {}
    tensors: dict[str, torch.Tensor] = {}
    sparse: dict[str, list[int]] = {}
    for name, tensor in weights_state.items():
        if name in masks:
            for suffix, part in _pack(tensor, masks[name]).items():
                tensors[name + suffix] = part
            sparse[name] = list(tensor.shape)
        else:
            tensors[name] = tensor
    structured = prune_cfg.structure == "structured"
    description = {
        "format": FORMAT,
        "model": {"name": model_cfg.name, "options": dict(model_cfg.options)},
        "data_info": asdict(info),
        "prune": prune_cfg.model_dump(mode="json"),
        "structure": prune_cfg.structure,
        "pruning": {k: pruner_meta[k] for k in PRUNING_KEYS if k in pruner_meta}
        if structured
        else {},
        "sparse": sparse,
        "source": source or {},
        "torch": torch.__version__,
    }
    body_hash = hashlib.sha256(_canonical(description)).hexdigest()
    weights = save_tensors(out / WEIGHTS_FILE, tensors, {"structure_sha256": body_hash})
    description["weights"] = {"file": WEIGHTS_FILE, "sha256": weights.sha256}
    path = out / STRUCTURE_FILE
    write_file(path, (json.dumps(description, indent=1, sort_keys=True) + "\n").encode())
    return path


# ---------------------------------------------------------------------- loading


def read_description(path: Path | str) -> dict[str, Any]:
    """The export's JSON description, after checking both hashes."""
    root = Path(path)
    file = root / STRUCTURE_FILE if root.is_dir() else root
    if not file.exists():
        raise CheckpointError(
            f"'{path}' holds no {STRUCTURE_FILE}; export with `prunebench export`"
        )
    try:
        description = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"'{file}' is not valid JSON: {exc}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise CheckpointError(f"'{file}' is not a {FORMAT} description")
    weights_info = description.pop("weights", None) or {}
    weights = file.parent / str(weights_info.get("file", WEIGHTS_FILE))
    if weights.name != WEIGHTS_FILE or not weights.exists():
        raise CheckpointError(f"the weights file '{weights}' is missing")
    if sha256_file(weights) != weights_info.get("sha256"):
        raise CheckpointError(
            f"'{weights}' does not match the sha256 in {file.name}: modified or swapped after export"
        )
    _, meta = load_tensors(weights)
    if meta.get("structure_sha256") != hashlib.sha256(_canonical(description)).hexdigest():
        raise CheckpointError(
            f"'{file}' does not match its weights file: the description was modified after export"
        )
    description["weights"] = weights_info
    return description


def load_pruned(path: Path | str, raw_inputs: bool = False) -> nn.Module:
    """Rebuild an exported pruned model (CPU, eval mode) without unpickling anything. It takes
    preprocessed tensors, as in training; with `raw_inputs=True` it is wrapped (`RawInputModel`)
    in the preprocessing recorded at export, so it takes inputs as the data source gave them."""
    description = read_description(path)
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    tensors, _ = load_tensors(root / WEIGHTS_FILE)
    model_cfg = validate(ModelConfig, description["model"], "export (model)")
    prune_cfg = validate(PruneConfig, description["prune"], "export (prune)")
    info = DataInfo(**description["data_info"])
    pruner_meta = {"structure": description["structure"], **description["pruning"]}
    if description["structure"] == "structured":
        model, _ = rebuild(model_cfg, prune_cfg, info, {}, pruner_meta)
    else:
        model = build_model(model_cfg, info)
    weights: dict[str, torch.Tensor] = {}
    for name, shape in description["sparse"].items():
        if name + VALUES not in tensors or name + BITS not in tensors:
            raise CheckpointError(f"the export lacks the sparse weights of '{name}'")
        weights[name] = _unpack(tensors.pop(name + VALUES), tensors.pop(name + BITS), shape, name)
    weights.update(tensors)
    check_fits(model, weights, f"export '{path}'")
    model.load_state_dict(weights)
    if raw_inputs:
        return RawInputModel(model, Preprocess(info.preprocessing)).eval()
    return model.eval()
