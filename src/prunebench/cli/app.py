"""The `prunebench` command: a thin typer layer over the library.

User errors (bad config, unknown names, missing files) print one line and exit with code 2,
before anything is computed or written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from prunebench.errors import PrunebenchError, StorageError, TrainingDiverged, one_line
from prunebench.outputs import check_output_dir, check_output_file, write_file


def _flags_without_type(params: list) -> list:
    """Boolean flags take no value: --help shows none for them (typer would print <bool>)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))


class _Typer(typer.Typer):
    """Commands whose --help lists flags without a value type."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or _Command, **kwargs)


app = _Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings reflow: a single newline is a space
    help="Benchmark pruning regimes: one-shot, iterative constant/geometric and hybrid.",
)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
DEFAULT_RESULTS = Path("results")

ResultsOpt = Annotated[Path, typer.Option("--results", "-r", help="results directory")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE", help="override a config key: a.b=value"),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no live progress display")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto, cpu or cuda (overrides the config)")
]
LogOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--log",
        help="also log to mlflow[=URI] or tensorboard[=DIR] (default: beside the results); "
        "repeatable; needs pip install 'prunebench[track]'",
    ),
]


def _check_log(values: list[str] | None, results: Path) -> list[str]:
    """Bad --log values fail before any compute (one line, exit 2)."""
    from prunebench.store.database import Store
    from prunebench.tracking.hub import check
    from prunebench.tracking.spec import parse_log

    values = list(values or [])
    if values:
        check([parse_log(v) for v in values], Store(results).log_dir)
    return values


def _version(value: bool) -> None:
    if value:
        from prunebench import __version__

        out.print(f"prunebench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Benchmark pruning regimes: one-shot, iterative constant/geometric and hybrid."""


def _targets(text: str) -> list[float]:
    """`--targets 0.5,0.8,0.9` as numbers; an empty or non-numeric item is named."""
    values = []
    for item in text.split(","):
        try:
            values.append(float(item))
        except ValueError:
            raise PrunebenchError(
                f"--targets: {item.strip()!r} is not a number; give comma-separated numbers "
                "such as 0.5,0.8,0.9"
            ) from None
    return values


def _overrides(values: list[str] | None, device: str | None) -> list[str]:
    values = list(values or [])
    if device is not None:
        values.append(f"device={device}")
    return values


@app.command()
def schedule(
    regime: Annotated[
        str, typer.Argument(help="one_shot, constant, geometric, hybrid, agp, manual")
    ],
    target: Annotated[float | None, typer.Option(help="final cumulative target in (0, 1)")] = None,
    steps: Annotated[int | None, typer.Option(help="number of steps")] = None,
    rate: Annotated[float | None, typer.Option(help="geometric/hybrid rate per step")] = None,
    step: Annotated[float | None, typer.Option(help="constant: share per step")] = None,
    first: Annotated[float | None, typer.Option(help="hybrid: the one-shot step p_k")] = None,
    targets: Annotated[str | None, typer.Option(help="manual: comma-separated targets")] = None,
    tolerance: Annotated[float | None, typer.Option(help="gap closed by the last step")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print a schedule's cumulative targets and per-step increments."""
    from prunebench.config.schedules import increments
    from prunebench.config.schema import RegimeConfig, validate

    given = {
        "name": regime,
        "target": target,
        "steps": steps,
        "rate": rate,
        "step": step,
        "first": first,
        "tolerance": tolerance,
        "targets": _targets(targets) if targets is not None else None,
    }
    values = {k: v for k, v in given.items() if v is not None}
    cfg = validate(RegimeConfig, values, "schedule", option=_schedule_option)
    cumulative = cfg.schedule()
    inc = increments(cumulative)
    if as_json:
        data = {"cumulative": _rounded(cumulative), "increments": _rounded(inc)}
        out.print_json(json.dumps(data))
        return
    from rich.table import Table

    noun = "step" if len(cumulative) == 1 else "steps"
    table = Table(title=f"{regime}: {len(cumulative)} {noun}")
    for col in ("step", "cumulative", "increment", "remaining"):
        table.add_column(col, justify="right")
    for i, (c, d) in enumerate(zip(cumulative, inc, strict=True), 1):
        table.add_row(str(i), f"{c:.6f}", f"{d:.6f}", f"{1 - c:.6f}")
    out.print(table)


def _schedule_option(key: str) -> str:
    """The `schedule` argument or option that sets a regime field."""
    return "REGIME" if key == "name" else f"--{key}"


def _rounded(values: list[float]) -> list[float]:
    """12 significant digits: what float arithmetic got right, without its noise
    (0.19999999999999996 -> 0.2)."""
    return [float(f"{v:.12g}") for v in values]


@app.command()
def pretrain(
    config: Annotated[Path, typer.Argument(help="run config YAML")],
    results: ResultsOpt = DEFAULT_RESULTS,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
    device: DeviceOpt = None,
) -> None:
    """Train and save the dense model that runs with this config start from (reused if present)."""
    from prunebench.config.schema import load_run_config

    cfg = load_run_config(config, _overrides(set_, device))
    check_output_dir(results, "--results")
    from prunebench.engine.dense_models import dense_model
    from prunebench.progress import make_progress
    from prunebench.store.database import Store

    store = Store(results)
    dense = dense_model(cfg, store, make_progress(quiet))
    state = "reused" if dense.reused else "trained"
    out.print(f"dense model {dense.base_id} ({state}): {store.dense_path(dense.base_id)}")
    out.print(" ".join(f"{k}={v:.4f}" for k, v in dense.metrics.items()))


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="run config YAML")],
    results: ResultsOpt = DEFAULT_RESULTS,
    seed: Annotated[int | None, typer.Option(help="seed (overrides the config)")] = None,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
    device: DeviceOpt = None,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            help="fine-tune data-parallel on N processes (torchrun + DDP; one per GPU, or gloo "
            "on the CPU); only the first writes results",
        ),
    ] = 1,
    log: LogOpt = None,
) -> None:
    """Run one pruning regime; every step is written to the results database."""
    from prunebench.config.schema import load_run_config

    cfg = load_run_config(config, _overrides(set_, device), seed=seed)
    check_output_dir(results, "--results")
    from prunebench.engine.executors.ddp_launch import (
        check_devices,
        launch,
        without_option,
        world_size,
    )

    if world_size() <= 1:  # the leader of a data-parallel run checks its own copy
        log = _check_log(log, results)

    if nproc < 1:
        raise PrunebenchError(f"--nproc must be >= 1, got {nproc}")
    if nproc > 1:
        if world_size() > 1:
            raise PrunebenchError("--nproc starts torchrun itself; do not combine it with torchrun")
        check_devices(cfg, nproc)
        code = launch(nproc, without_option(sys.argv[1:], "--nproc"))
        if code:
            raise typer.Exit(code)
        return
    from prunebench.engine.single_run import run as run_one
    from prunebench.progress import make_progress
    from prunebench.store.database import Store

    if world_size() > 1:  # one copy of a data-parallel launch
        _run_data_parallel(cfg, results, quiet, log)
        return
    _print_run(run_one(cfg, Store(results), make_progress(quiet), log=log), results)


def _run_data_parallel(cfg, results: Path, quiet: bool, log: list[str]) -> None:
    """Rank 0 drives and writes (the only writer); the other ranks follow it step by step."""
    from prunebench.engine.executors.ddp_launch import DataParallelExecutor, follow, start, stop
    from prunebench.engine.single_run import run as run_one
    from prunebench.progress import make_progress
    from prunebench.store.database import Store

    parallel = start(cfg)
    try:
        if parallel.rank != 0:
            follow(parallel)
            return
        log = _check_log(log, results)
        executor = DataParallelExecutor(parallel)
        try:
            result = run_one(cfg, Store(results), make_progress(quiet), executor, log)
        finally:
            executor.close()  # the followers stop however the leader ends
        _print_run(result, results)
    finally:
        stop()


def _print_run(result, results: Path) -> None:
    from prunebench.store.results import load_results
    from prunebench.tables import steps_table

    if result.already_done:
        out.print(f"run {result.run_id} is already complete in {results}; nothing to do")
    df = load_results(results)
    out.print(steps_table(df[df["run_id"] == result.run_id], df["run_id"]))


ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor", "-x", help="local (in this process), processes (on this machine) or ray"
    ),
]


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="sweep YAML")],
    results: ResultsOpt = DEFAULT_RESULTS,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
    device: DeviceOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="print the plan (tree, naive vs planned steps) and its estimated wall time only",
        ),
    ] = False,
    estimate: Annotated[
        bool,
        typer.Option(
            help="with --dry-run: time a few batches of each model on the device to estimate "
            "the wall time"
        ),
    ] = True,
    executor: ExecutorOpt = "local",
    address: Annotated[
        str | None, typer.Option(help="ray: address of a running cluster (default: start one)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="processes / ray: number of workers (default: the CPUs)"),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="torch threads per process (results are bit-identical at equal counts)"),
    ] = None,
    gpus_per_step: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-step",
            "--gpus-per-worker",
            help="ray: each step's share of a GPU (0.25: four steps per GPU; default: 1 when "
            "the cluster has GPUs and the runs may use them, else 0)",
        ),
    ] = None,
    log: LogOpt = None,
    until_decided: Annotated[
        bool,
        typer.Option(
            "--until-decided",
            help="add seeds in rounds, only to open questions and to regimes still in "
            "contention, until each is decided (sequential error rates)",
        ),
    ] = False,
    max_seeds: Annotated[
        int | None, typer.Option(help="--until-decided: at most this many seeds (default 6)")
    ] = None,
    budget: Annotated[
        float | None, typer.Option(help="--until-decided: stop at this many fine-tuning epochs")
    ] = None,
    budget_hours: Annotated[
        float | None, typer.Option(help="--until-decided: stop after this many hours")
    ] = None,
) -> None:
    """Run every point of a grid, computing steps that runs share once; then compare them.

    A killed sweep resumes where it stopped when run again; a failing run is recorded as
    failed and the others go on (exit code 1 at the end).
    """
    from prunebench.config.sweep_grid import load_sweep

    _, configs, skipped = load_sweep(sweep_file, _overrides(set_, device))
    rounds = None
    if until_decided:
        from prunebench.cli.until_decided import design_for

        rounds = design_for(configs, results, max_seeds, budget, budget_hours)
    elif max_seeds is not None or budget is not None or budget_hours is not None:
        raise PrunebenchError("--max-seeds, --budget and --budget-hours need --until-decided")
    if executor not in ("local", "processes", "ray"):
        raise PrunebenchError(f"--executor must be local, processes or ray, not '{executor}'")
    if executor == "local" and workers:
        raise PrunebenchError("--workers needs --executor processes or ray")
    if executor != "ray" and (address or gpus_per_step is not None):
        raise PrunebenchError("--address and --gpus-per-step need --executor ray")
    for value, option in ((workers, "--workers"), (threads, "--threads")):
        if value is not None and value < 1:
            raise PrunebenchError(f"{option} must be >= 1, got {value}")
    if gpus_per_step is not None and gpus_per_step < 0:
        raise PrunebenchError(f"--gpus-per-step must be >= 0, got {gpus_per_step}")
    if gpus_per_step is None and all(cfg.device == "cpu" for cfg in configs):
        gpus_per_step = 0.0
    if not dry_run:
        check_output_dir(results, "--results")
    log = _check_log(log, results)
    for reason in skipped:
        out.print(f"[yellow]skipped[/]: {reason}")
    from prunebench.engine.plan import build_plan, count, render_counts, render_tree

    plan = build_plan(configs)
    if dry_run:
        stored = _stored_epochs(results, plan)
        lines = [*render_tree(plan, stored), "", *render_counts(count(plan, stored))]
        if rounds is not None:
            from prunebench.cli.until_decided import dry_run_lines

            lines += ["", *dry_run_lines(configs, rounds[0], stored)]
        if estimate:
            if threads is not None:
                import torch

                torch.set_num_threads(threads)
            lines += _estimate_lines(plan, results, stored, workers)
        for line in lines:
            out.print(line, markup=False, highlight=False)
        return
    import torch

    from prunebench.engine.driver import execute_plan
    from prunebench.engine.executors.local import LocalExecutor
    from prunebench.engine.executors.processes import ProcessExecutor
    from prunebench.engine.executors.ray import RayExecutor
    from prunebench.progress import make_progress
    from prunebench.store.database import Store
    from prunebench.store.results import load_results
    from prunebench.tables import comparison_table, failures_table

    if threads is not None:
        torch.set_num_threads(threads)
    chosen = {
        "local": LocalExecutor,
        "processes": lambda: ProcessExecutor(workers, threads),
        "ray": lambda: RayExecutor(address, workers, threads, gpus_per_step),
    }[executor]()
    if rounds is not None:
        from prunebench.cli.until_decided import run_until_decided

        def execute(cfgs):
            return execute_plan(build_plan(cfgs), Store(results), chosen, make_progress(quiet),
                                log, sweep_file.stem)  # fmt: skip

        done, lines = run_until_decided(configs, results, *rounds, execute)
        for line in lines:
            out.print(line, markup=False, highlight=False)
        out.print(f"results: {results / 'results.sqlite'}")
        if any(o.failed for o in done.outcomes):
            raise typer.Exit(1)
        return
    outcome = execute_plan(plan, Store(results), chosen, make_progress(quiet), log, sweep_file.stem)
    order = {r.run_id: i for i, r in enumerate(plan.runs)}  # columns in the sweep's order
    df = load_results(results)
    df = df[df["run_id"].isin(order)]
    df = df.sort_values(["run_id", "step"], key=lambda c: c.map(order) if c.name == "run_id" else c)
    out.print(comparison_table(df[df["step"].notna()]))
    failed = run_records(df[df["run_id"].isin(outcome.failed)])
    if failed:
        out.print(failures_table(failed))
    others = f", {outcome.by_others} by another process" if outcome.by_others else ""
    out.print(
        f"{outcome.runs} runs: {outcome.already_done} already done, {len(outcome.done)} done now, "
        f"{len(outcome.failed)} failed; {outcome.computed} steps computed{others}, "
        f"{outcome.shared + outcome.copied} rows reused ({outcome.shared} shared with a step "
        f"computed now, {outcome.copied} copied from stored steps) ({outcome.seconds:.1f}s)"
    )
    out.print(f"results: {results / 'results.sqlite'}")
    if outcome.failed:
        raise typer.Exit(1)


def _estimate_lines(plan, results: Path, stored: dict[str, int], workers: int | None) -> list[str]:
    """Time a few batches of each model and data; the plan's wall time per number of steps side
    by side. Builds data and models in memory only: writes nothing."""
    from prunebench.config.schema import base_id
    from prunebench.data.catalog import DATASETS
    from prunebench.devices import resolve_device
    from prunebench.engine.estimate import estimate as estimate_plan
    from prunebench.engine.estimate import render
    from prunebench.store.database import Store

    store, bundles = Store(results), {}

    def data_for(cfg):
        key = (cfg.data.model_dump_json(), cfg.device)
        if key not in bundles:
            bundles[key] = DATASETS.get(cfg.data.name).build(cfg.data, resolve_device(cfg.device))
        return bundles[key]

    dense = {base_id(r.cfg): r.cfg for r in plan.runs}
    missing = [cfg for bid, cfg in dense.items() if not store.dense_path(bid).exists()]
    todo = [key for key in plan.nodes if key not in stored]
    est = estimate_plan(plan, todo, data_for, missing)
    return ["", *render(est, {1, 2, 4, 8, workers or 1})]


def _stored_epochs(results: Path, plan) -> dict[str, int]:
    """Planned steps already in `results` (row + checkpoint) with their epochs; writes nothing."""
    from prunebench.store.database import Store

    stored = Store(results).stored_steps(plan.nodes)
    return {key: row["epochs"] for key, row in stored.items()}


def run_records(df) -> list[dict]:
    """One record per run of a `load_results` frame: its run fields (status, error, its final
    target as `target`), missing values as None."""
    runs = df.drop_duplicates("run_id")
    runs = runs.astype(object).where(runs.notna(), None)
    return [{**r, "target": r["run_target"]} for r in runs.to_dict("records")]


@app.command()
def results(
    directory: Annotated[Path, typer.Argument(help="results directory")],
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
    _warn_integrity(directory)
    every_id = list(df["run_id"])  # short ids in the table stay unique among all runs
    if run_id is not None:
        df = df[df["run_id"] == find_run(df, run_id)]
    if fmt == "table":
        from prunebench.tables import failures_table

        out.print(steps_table(df, every_id))
        unfinished = run_records(df[df["status"] != "done"])
        if unfinished:
            out.print(failures_table(unfinished))
        return
    if fmt == "parquet":
        data = df.to_parquet(index=False)
    elif fmt == "csv":
        data = df.to_csv(index=False).encode()
    else:
        data = (df.to_json(orient="records", indent=1) + "\n").encode()
    if output is not None:
        write_file(output, data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


MarginOpt = Annotated[
    float | None,
    typer.Option(help="practical margin: pp of accuracy / % of perplexity (default 0.1 / 1)"),
]
AlphaOpt = Annotated[float, typer.Option(help="family-wise error rate (Holm-corrected)")]
MinEffectOpt = Annotated[
    float | None,
    typer.Option(help="smallest difference worth more seeds: pp / % (default 0.5 / 2)"),
]


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="results directory")],
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
) -> None:
    """Write an HTML report and a Markdown summary from the results database."""
    from prunebench.store.results import load_results, require_runs

    require_runs(load_results(directory), directory)
    if out_dir is not None:
        check_output_dir(out_dir, "--out")
    else:
        check_output_dir(directory / "report", "report directory")
    from prunebench.report import write_report

    log = _check_log(log, directory)
    if any(not v.strip().lower().startswith("mlflow") for v in log):
        raise PrunebenchError("report --log takes mlflow[=URI]: TensorBoard holds no reports")
    files = write_report(directory, out_dir, figure_format, alpha, margin, min_effect)
    _warn_integrity(directory)
    out.print(f"markdown: {files.markdown}")
    if files.figures:
        out.print(f"figures: {files.figures[0].parent} ({len(files.figures)} files)")
    out.print(f"report: {files.html}")
    for value in log:
        _log_report(value, directory, [files.html, files.markdown, *files.figures])


def _log_report(value: str, directory: Path, files: list[Path]) -> None:
    """A failure to log is a warning: the report is written either way."""
    from rich.markup import escape

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


@app.command()
def advise(
    directory: Annotated[Path, typer.Argument(help="results directory")],
    ratio: Annotated[float | None, typer.Option(help="only this pruning ratio")] = None,
    budget: Annotated[
        float | None, typer.Option(help="retraining budget: mean total fine-tuning epochs")
    ] = None,
    margin: MarginOpt = None,
    alpha: AlphaOpt = 0.05,
    min_effect: MinEffectOpt = None,
) -> None:
    """Which regime to use: the report's decision per ratio (within a budget), with its
    interval, a cheaper equivalent alternative, and the seeds it would take to decide."""
    from prunebench.report.terminal import advise_lines

    lines = advise_lines(directory, ratio=ratio, budget=budget, alpha=alpha, margin=margin,
                         min_effect=min_effect)  # fmt: skip
    for line in lines:
        out.print(line, markup=False, highlight=False)


@app.command()
def export(
    directory: Annotated[Path, typer.Argument(help="results directory")],
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
    prunebench.load_pruned (no pickle); with --format onnx also model.onnx, checked in
    onnxruntime."""
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


@app.command("list")
def list_(
    kind: Annotated[str, typer.Argument(help="models, datasets, criteria, presets or regimes")],
    term: Annotated[str | None, typer.Argument(help="only names containing this")] = None,
) -> None:
    """List the names a config can hold (torchvision and timm models included), or search them."""
    from prunebench.cli.listing import listing

    rows = listing(kind, term)
    if not rows:
        raise PrunebenchError(f"no {kind} match '{term}'")
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        out.print(f"{name:<{width}}  {description}".rstrip(), markup=False, highlight=False)


config_app = typer.Typer(no_args_is_help=True, help="Inspect run configs.")
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    config: Annotated[
        Path | None, typer.Argument(help="run config YAML (default: defaults)")
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Print the fully resolved config (every default filled in) and its run id."""
    import yaml

    from prunebench.config.schema import load_run_config, run_id

    cfg = load_run_config(config, list(set_ or []))
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=False)
    out.print(f"# run id: {run_id(cfg)}\n{text}", markup=False, highlight=False, end="")


@app.command()
def verify(directory: Annotated[Path, typer.Argument(help="results directory")]) -> None:
    """Check a results directory: SQLite integrity, every row's digest, every file's sha256,
    missing files and orphans. Exit code 1 when something is wrong."""
    from prunebench.store.verify import verify as check

    found = check(directory)
    for line in found.lines:
        out.print(line, markup=False, highlight=False)
    if found.problems:
        raise typer.Exit(1)


def _warn_integrity(directory: Path) -> None:
    from prunebench.store.results import integrity_warning

    warning = integrity_warning(directory)
    if warning:
        Console(stderr=True, soft_wrap=True).print(
            f"warning: {warning}", style="yellow", markup=False, highlight=False
        )


def _error(message: str, code: int = 2) -> None:
    Console(stderr=True).print(
        f"[red]error:[/] {escape(one_line(message))}", highlight=False, soft_wrap=True
    )
    sys.exit(code)


def _usage_error(exc: typer.TyperException) -> None:
    """A bad option or argument that typer caught while parsing: one line, like our own errors
    (typer's own display is a usage line, a hint and a framed box)."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # `prunebench` alone: the help was printed
        sys.exit(2)
    command = ctx.command_path if ctx is not None else "prunebench"
    _error(f"{exc.format_message()} (see {command} --help)")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        _usage_error(exc)
    except StorageError as exc:  # the runs are recorded as failed; the next invocation resumes
        _error(str(exc), code=1)
    except typer.Abort:
        Console(stderr=True).print("Aborted!")
        sys.exit(1)
    except PrunebenchError as exc:
        _error(str(exc))
    except TrainingDiverged as exc:
        Console(stderr=True).print(f"[red]training diverged:[/] {exc}", highlight=False)
        sys.exit(1)
    if code == 130:  # Ctrl-C: typer returns 130
        Console(stderr=True, soft_wrap=True).print(
            "interrupted; run the same command again to resume", highlight=False
        )
    if isinstance(code, int) and code:  # typer.Exit(n) and Ctrl-C (130) return their code
        sys.exit(code)


if __name__ == "__main__":
    main()
