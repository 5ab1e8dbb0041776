"""`prunebench export --format hf`: a folder that `from_pretrained` loads with no custom code.

The folder holds config.json (the model's config with the pruned widths: heads, key/value heads,
head_dim, MLP width; `models/hf_config.exportable_config` proves on the meta device that it
builds exactly the pruned shapes), model.safetensors, generation_config.json and the run's
tokenizer files: those of the local folder `data.tokenizer` names, or the tokenizer the data
source builds when it names none (the generated stories' word tokenizer). It is written to a temporary
folder beside the target, loaded back with `from_pretrained` (no missing, unexpected or
mismatched weights; logits equal to the pruned model's within 1e-4) and only then renamed into
place: a folder that would load with other shapes or without some weights is never written.
Unstructured pruning is always expressible (zeros in dense tensors); structured pruning when
every layer keeps the same widths, which `prune.uniform_widths=true` guarantees, and the config
has a field for each pruned width (Bloom's MLP is 4 x hidden_size, fixed: refused; to a run
pruned with uniform widths already, the message names prune.exclude and unstructured instead).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunebench.config.loading import validate
from prunebench.config.schema import DataConfig
from prunebench.data.build import build_data
from prunebench.errors import PrunebenchError, StorageError
from prunebench.export.pruned import StoredStep, load_step
from prunebench.models.hf import auto_class, hf_example_inputs, hf_heads
from prunebench.models.hf_config import NotExpressible, exportable_config, fixed_heads
from prunebench.pruning.heads import counts as head_counts

TOLERANCE = 1e-4  # largest |logit difference| between the folder and the pruned model
OPTION = "prune.uniform_widths=true"


def export_hf_step(results: Path | str, run: str, step: int | None, out: Path | str) -> Path:
    """Export step `step` (default: the last) of run `run` as a from_pretrained folder."""
    stored = load_step(results, run, step)
    tokenizer = _run_tokenizer(stored)
    example = hf_example_inputs(stored.info)
    name = f"run {stored.source['run_id']}"
    uniform = bool(stored.config.get("prune", {}).get("uniform_widths"))
    return write_hf_folder(
        stored.model.eval(), Path(out), stored.info.task, example, tokenizer, name, uniform
    )


def _run_tokenizer(stored: StoredStep) -> Any:
    """Where the folder's tokenizer files come from: the configured `data.tokenizer` path, or
    for a language dataset without one the tokenizer its data source builds (the generated
    stories' word tokenizer, rebuilt from the stored data config); None for other tasks."""
    path = stored.config.get("data", {}).get("tokenizer")
    if path is not None or stored.info.task != "causal_lm":
        return path
    data_cfg = validate(DataConfig, stored.config["data"], "stored run config (data)")
    return build_data(data_cfg, torch.device("cpu")).tokenizer


def write_hf_folder(
    model: nn.Module,
    out: Path,
    task: str,
    example: torch.Tensor,
    tokenizer: Any = None,  # a tokenizer folder (path) or a transformers tokenizer
    name: str = "the model",
    uniform_widths: bool = False,  # the model was pruned with prune.uniform_widths
) -> Path:
    """Write `model` (a pruned transformers model) as a from_pretrained folder at `out`."""
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        raise PrunebenchError(
            f"--format hf needs a Hugging Face model (model.name=hf); {name} holds a "
            f"{type(model).__name__}: export it as safetensors or onnx"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PrunebenchError(f"'{out}' exists and is not an empty folder; name a new one")
    layouts = hf_heads(model)
    _check_heads(model, layouts, name)
    try:
        config = exportable_config(model, layouts)
    except NotExpressible as exc:
        fix = (  # the same widths in every layer did not do: the config has no such field
            "leave the layers of that width unpruned (prune.exclude) or prune unstructured"
            if uniform_widths
            else f"prune with {OPTION}"
        )
        raise PrunebenchError(
            f"{name}: its pruned shapes cannot be written as a config.json ({exc}); {fix} "
            "to export it with --format hf"
        ) from None
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dense_config = model.config
    try:
        model.config = config
        try:
            with _no_progress_bars():
                model.save_pretrained(tmp, safe_serialization=True)
        finally:
            model.config = dense_config
        if tokenizer is not None:
            _save_tokenizer(tokenizer, tmp)
        with _no_progress_bars():
            check_folder(tmp, model, task, example, name)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as exc:
        raise StorageError(f"cannot write '{out}': {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _check_heads(model: nn.Module, layouts: list, name: str) -> None:
    """Heads cut from a model whose config ties the head width to the hidden size (GPT-Neo
    registered as `gpt_neo`, which prunes heads under uniform widths too): no config.json
    holds them, so say that, and the ways out, instead of the first tensor that differs."""
    hidden = getattr(model.config, "hidden_size", None)
    cut = [layout for layout in layouts if head_counts(layout)[0] * layout.head_dim != hidden]
    why = fixed_heads(model, layouts) if cut and isinstance(hidden, int) else None
    if why is not None:
        raise PrunebenchError(
            f"{name}: its attention lost heads, which a config.json cannot hold ({why}); "
            "to export it with --format hf, keep the heads (prune.exclude the attention "
            "projections, or run it as model.name=hf with this config.json and "
            f"{OPTION}, which keeps them) or prune unstructured"
        )


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' shard-writing and weight-loading bars, off inside (the CLI prints one
    line per export)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _save_tokenizer(tokenizer: Any, folder: Path) -> None:
    """A tokenizer folder's files (a path) or a transformers tokenizer, saved into `folder`."""
    from transformers import AutoTokenizer

    if isinstance(tokenizer, (str, Path)):
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer), local_files_only=True)
    tokenizer.save_pretrained(folder)


@torch.no_grad()
def check_folder(folder: Path, model: nn.Module, task: str, example: Any, name: str) -> None:
    """`from_pretrained(folder)` loads every weight with its shape and computes the logits of
    `model` (within TOLERANCE); PrunebenchError otherwise."""
    loaded, info = auto_class(task).from_pretrained(
        str(folder), local_files_only=True, output_loading_info=True
    )
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"}
    if problems or info.get("error_msgs"):
        raise PrunebenchError(f"{name}: the written folder does not load whole: {problems}")
    loaded.eval()
    mine = _logits(model, example)
    theirs = _logits(loaded, example)
    gap = float((mine - theirs).abs().max()) if mine.shape == theirs.shape else float("inf")
    if gap > TOLERANCE:
        raise PrunebenchError(
            f"{name}: the folder's logits differ from the pruned model's by {gap:.3g} "
            f"(> {TOLERANCE:g}); nothing was written"
        )


def _logits(model: nn.Module, example: torch.Tensor) -> torch.Tensor:
    key = "input_ids" if not torch.is_floating_point(example) else "pixel_values"
    kwargs = {"use_cache": False} if key == "input_ids" else {}
    return model(**{key: example}, **kwargs).logits.float()
