"""The `export` command: a stored pruned model as safetensors + structure.json, ONNX, or a
Hugging Face from_pretrained folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prunebench.cli.base import DirectoryArg, out
from prunebench.errors import PrunebenchError
from prunebench.outputs import check_output_dir


def export(
    directory: DirectoryArg,
    out_dir: Annotated[Path, typer.Argument(help="directory to write the pruned model to")],
    run_id: Annotated[
        str, typer.Option("--run", help="run id (or a unique prefix); optional with one run")
    ] = "",
    step: Annotated[int | None, typer.Option(help="pruning step (default: the last)")] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="safetensors (+ structure.json); onnx: model.onnx beside them; hf: a folder "
            "that transformers' from_pretrained loads",
        ),
    ] = "safetensors",
) -> None:
    """Export a pruned model: safetensors weights + JSON structure, loadable with
    prunebench.load_pruned (no pickle; `raw_inputs=True` adds the data's preprocessing, which
    structure.json records); with --format onnx also model.onnx, checked in onnxruntime; with
    --format hf a from_pretrained folder (config.json, model.safetensors, tokenizer files)
    instead."""
    if fmt not in ("safetensors", "onnx", "hf"):
        raise PrunebenchError(f"--format must be safetensors, onnx or hf, not '{fmt}'")
    if fmt == "onnx":
        from prunebench.export.onnx import check_installed

        check_installed()
    check_output_dir(out_dir, "export directory")
    if fmt == "safetensors":
        _no_stale_onnx(out_dir)
    if fmt == "hf":
        from prunebench.export.hf_folder import export_hf_step

        folder = export_hf_step(directory, run_id, step, out_dir)
        out.print(f"exported to {folder} (config.json + model.safetensors; from_pretrained)")
        return
    from prunebench.export.pruned import export_step

    path = export_step(directory, run_id, step, out_dir)
    out.print(f"exported to {path.parent} ({path.name} + weights.safetensors)")
    if fmt == "onnx":
        from prunebench.export.onnx import describe, write_onnx

        result = write_onnx(path.parent)
        out.print(describe(result), markup=False, highlight=False)
        if result.note:
            out.print(f"note: {result.note}", markup=False, highlight=False)


def _no_stale_onnx(out_dir: Path) -> None:
    """A model.onnx of an earlier export would sit beside other weights: refused, not kept."""
    from prunebench.export.onnx import ONNX_FILE

    stale = out_dir / ONNX_FILE
    if stale.exists():
        raise PrunebenchError(
            f"'{out_dir}' holds {ONNX_FILE} from an earlier export, which would no longer "
            f"match the exported weights; export into another folder or delete {stale}"
        )
