"""The `export` command: a stored pruned model as safetensors + structure.json, or ONNX."""

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
    run_id: Annotated[str, typer.Option("--run", help="run id (or a unique prefix)")],
    step: Annotated[int | None, typer.Option(help="pruning step (default: the last)")] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="safetensors (+ structure.json), or onnx: model.onnx beside them"
        ),
    ] = "safetensors",
) -> None:
    """Export a pruned model: safetensors weights + JSON structure, loadable with
    prunebench.load_pruned (no pickle; `raw_inputs=True` adds the data's preprocessing, which
    structure.json records); with --format onnx also model.onnx, checked in onnxruntime."""
    if fmt not in ("safetensors", "onnx"):
        raise PrunebenchError(f"--format must be safetensors or onnx, not '{fmt}'")
    if fmt == "onnx":
        from prunebench.export.onnx import check_installed

        check_installed()
    check_output_dir(out_dir, "export directory")
    from prunebench.export.pruned import export_step

    path = export_step(directory, run_id, step, out_dir)
    out.print(f"exported to {path.parent} ({path.name} + weights.safetensors)")
    if fmt == "onnx":
        from prunebench.export.onnx import describe, write_onnx

        result = write_onnx(path.parent)
        out.print(describe(result), markup=False, highlight=False)
        if result.note:
            out.print(f"note: {result.note}", markup=False, highlight=False)
