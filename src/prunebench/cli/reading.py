"""Commands that read a results directory: `results`, `report`, `advise`, `verify`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from prunebench.cli.base import DirectoryArg, check_log, out, warn_integrity, warn_sanity
from prunebench.cli.result_output import run_records, serialised
from prunebench.errors import PrunebenchError
from prunebench.outputs import check_output_dir, check_output_file, write_file

MarginOpt = Annotated[
    float | None,
    typer.Option(help="practical margin: pp of accuracy / % of perplexity (default 0.1 / 1)"),
]
AlphaOpt = Annotated[float, typer.Option(help="family-wise error rate (Holm-corrected)")]
MinEffectOpt = Annotated[
    float | None,
    typer.Option(help="smallest difference worth more seeds: pp / % (default 0.5 / 2)"),
]
MetricOpt = Annotated[
    str | None,
    typer.Option(
        "--metric",
        help="decide on an evaluation of eval: (a column eval.NAME of `results`, e.g. "
        "eval.boolq/acc) instead of the test metric",
    ),
]


def results(
    directory: DirectoryArg,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, json or parquet")
    ] = "table",
    run_id: Annotated[
        str | None, typer.Option("--run", help="only this run (its id or a unique prefix)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to this file, not stdout")
    ] = None,
) -> None:
    """Print (or export) the stored pruning steps, one row per step; failed runs included."""
    from prunebench.store.results import EXPORT_FORMATS, find_run, load_results, require_runs
    from prunebench.tables import steps_table

    if fmt not in EXPORT_FORMATS:
        raise PrunebenchError(f"--format must be table, csv, json or parquet, not '{fmt}'")
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        raise PrunebenchError("parquet is binary: pass --output FILE or redirect stdout")
    if output is not None:
        if fmt == "table":
            raise PrunebenchError("--output writes a file: add --format csv, json or parquet")
        check_output_file(output, "--output")
    df = require_runs(load_results(directory), directory)
    warn_integrity(directory)
    every_id = list(df["run_id"])  # short ids in the table stay unique among all runs
    if run_id is not None:
        df = df[df["run_id"] == find_run(df, run_id)]
    if fmt == "table":
        from prunebench.tables import failures_table

        out.print(steps_table(df, every_id))
        unfinished = run_records(df[df["status"] != "done"])
        if unfinished:
            out.print(failures_table(unfinished))
        warn_sanity(df, directory)
        return
    data = serialised(df, fmt)
    if output is not None:
        write_file(output, data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def report(
    directory: DirectoryArg,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="output directory (default DIR/report)")
    ] = None,
    figure_format: Annotated[
        str | None, typer.Option("--figures", help="also write each figure: png or svg")
    ] = None,
    log: Annotated[
        list[str] | None,
        typer.Option("--log", help="attach the report to MLflow: mlflow[=URI]; repeatable"),
    ] = None,
    margin: MarginOpt = None,
    alpha: AlphaOpt = 0.05,
    min_effect: MinEffectOpt = None,
    metric: MetricOpt = None,
) -> None:
    """Write an HTML report and a Markdown summary from the results database."""
    from prunebench.report.prepare import reported_as
    from prunebench.store.results import load_results, require_runs

    rows = require_runs(load_results(directory), directory)
    if metric is not None:
        reported_as(rows, metric)  # an evaluation not stored: one line before writing
    if out_dir is not None:
        check_output_dir(out_dir, "--out")
    else:
        check_output_dir(directory / "report", "report directory")
    from prunebench.report import write_report

    log = check_log(log, directory)
    if any(not v.strip().lower().startswith("mlflow") for v in log):
        raise PrunebenchError("report --log takes mlflow[=URI]: TensorBoard holds no reports")
    files = write_report(directory, out_dir, figure_format, alpha, margin, min_effect, metric)
    warn_integrity(directory)
    out.print(f"markdown: {files.markdown}")
    if files.figures:
        out.print(f"figures: {files.figures[0].parent} ({len(files.figures)} files)")
    out.print(f"report: {files.html}")
    for value in log:
        _log_report(value, directory, [files.html, files.markdown, *files.figures])


def _log_report(value: str, directory: Path, files: list[Path]) -> None:
    """A failure to log is a warning: the report is written either way."""
    from prunebench.store.database import Store
    from prunebench.tracking.mlflow_tracker import log_report
    from prunebench.tracking.spec import parse_log

    spec = parse_log(value)
    location = spec.location or str(Store(directory).log_dir("mlflow"))
    try:
        mlflow_run = log_report(location, directory.resolve(), files)
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [""])[0][:300]
        Console(stderr=True).print(
            f"[yellow]warning:[/] the report was not logged to {escape(str(spec))} "
            f"({type(exc).__name__}: {escape(message)})",
            highlight=False,
        )
        return
    out.print(f"report logged to {spec}: run {mlflow_run}, artifacts report/")


def advise(
    directory: DirectoryArg,
    ratio: Annotated[float | None, typer.Option(help="only this pruning ratio")] = None,
    budget: Annotated[
        float | None, typer.Option(help="retraining budget: mean total fine-tuning epochs")
    ] = None,
    margin: MarginOpt = None,
    alpha: AlphaOpt = 0.05,
    min_effect: MinEffectOpt = None,
    metric: MetricOpt = None,
) -> None:
    """Which regime to use: the report's decision per ratio (within a budget), with its
    interval, a cheaper equivalent alternative, and the seeds it would take to decide."""
    from prunebench.report.terminal import advise_lines

    lines = advise_lines(
        directory,
        metric,
        ratio=ratio,
        budget=budget,
        alpha=alpha,
        margin=margin,
        min_effect=min_effect,
    )
    for line in lines:
        out.print(line, markup=False, highlight=False)


def verify(directory: DirectoryArg) -> None:
    """Check a results directory: SQLite integrity, every row's digest, every file's sha256,
    missing files and orphans. Exit code 1 when something is wrong."""
    from prunebench.store.verify import verify as check

    found = check(directory)
    for line in found.lines:
        out.print(line, markup=False, highlight=False)
    if found.problems:
        raise typer.Exit(1)
