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

from prunebench.errors import PrunebenchError, TrainingDiverged

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark pruning regimes: one-shot, iterative constant/geometric and hybrid.",
)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
DEFAULT_RESULTS = Path("results")

ResultsOpt = Annotated[Path, typer.Option("--results", "-r", help="results directory")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="override a config key: a.b=value")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no live progress display")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto, cpu or cuda (overrides the config)")
]


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
    from prunebench.config import RegimeConfig, validate
    from prunebench.schedules import increments

    given = {
        "name": regime,
        "target": target,
        "steps": steps,
        "rate": rate,
        "step": step,
        "first": first,
        "tolerance": tolerance,
        "targets": [float(t) for t in targets.split(",")] if targets else None,
    }
    cfg = validate(RegimeConfig, {k: v for k, v in given.items() if v is not None}, "schedule")
    cumulative = cfg.schedule()
    inc = increments(cumulative)
    if as_json:
        out.print_json(json.dumps({"cumulative": cumulative, "increments": inc}))
        return
    from rich.table import Table

    table = Table(title=f"{regime}: {len(cumulative)} steps")
    for col in ("step", "cumulative", "increment", "remaining"):
        table.add_column(col, justify="right")
    for i, (c, d) in enumerate(zip(cumulative, inc, strict=True), 1):
        table.add_row(str(i), f"{c:.6f}", f"{d:.6f}", f"{1 - c:.6f}")
    out.print(table)


@app.command()
def pretrain(
    config: Annotated[Path, typer.Argument(help="run config YAML")],
    results: ResultsOpt = DEFAULT_RESULTS,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
    device: DeviceOpt = None,
) -> None:
    """Train and save the dense model that runs with this config start from (reused if present)."""
    from prunebench.config import load_run_config

    cfg = load_run_config(config, _overrides(set_, device))
    from prunebench.data import DATASETS
    from prunebench.devices import resolve_device
    from prunebench.pretrain import ensure_dense
    from prunebench.progress import make_progress
    from prunebench.store import Store
    from prunebench.tasks import make_task

    dev = resolve_device(cfg.device)
    data = DATASETS.get(cfg.data.name).build(cfg.data, dev)
    store = Store(results)
    dense = ensure_dense(cfg, store, data, make_task(data.info.task), dev, make_progress(quiet))
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
) -> None:
    """Run one pruning regime; every step is written to the results database."""
    from prunebench.config import load_run_config

    cfg = load_run_config(config, _overrides(set_, device), seed=seed)
    from prunebench.execute import run as run_one
    from prunebench.progress import make_progress
    from prunebench.store import Store
    from prunebench.tables import steps_table

    store = Store(results)
    result = run_one(cfg, store, make_progress(quiet))
    if result.already_done:
        out.print(f"run {result.run_id} is already complete in {results}; nothing to do")
    out.print(steps_table(store.results().query("run_id == @result.run_id")))


ExecutorOpt = Annotated[
    str, typer.Option("--executor", "-x", help="local (in this process) or ray")
]


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="sweep YAML")],
    results: ResultsOpt = DEFAULT_RESULTS,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
    device: DeviceOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan (tree, naive vs planned steps) only")
    ] = False,
    executor: ExecutorOpt = "local",
    address: Annotated[
        str | None, typer.Option(help="ray: address of a running cluster (default: start one)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="ray: number of workers (default: the cluster's CPUs)")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="torch threads per process (results are bit-identical at equal counts)"),
    ] = None,
    gpus_per_worker: Annotated[float, typer.Option(help="ray: GPUs per worker")] = 0.0,
) -> None:
    """Run every point of a grid, computing steps that runs share once; then compare them.

    A killed sweep resumes where it stopped when run again; a failing run is recorded as
    failed and the others go on (exit code 1 at the end).
    """
    from prunebench.sweep import load_sweep

    _, configs, skipped = load_sweep(sweep_file, _overrides(set_, device))
    if executor not in ("local", "ray"):
        raise PrunebenchError(f"--executor must be local or ray, not '{executor}'")
    if executor == "local" and (address or workers or gpus_per_worker):
        raise PrunebenchError("--address, --workers and --gpus-per-worker need --executor ray")
    for value, option in ((workers, "--workers"), (threads, "--threads")):
        if value is not None and value < 1:
            raise PrunebenchError(f"{option} must be >= 1, got {value}")
    if gpus_per_worker < 0:
        raise PrunebenchError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
    for reason in skipped:
        out.print(f"[yellow]skipped[/]: {reason}")
    from prunebench.plan import build_plan, count, render_counts, render_tree

    plan = build_plan(configs)
    if dry_run:
        stored = _stored_epochs(results, plan)
        for line in [*render_tree(plan, stored), "", *render_counts(count(plan, stored))]:
            out.print(line, markup=False, highlight=False)
        return
    import torch

    from prunebench.execute import execute_plan
    from prunebench.executors import LocalExecutor, RayExecutor
    from prunebench.progress import make_progress
    from prunebench.store import Store
    from prunebench.tables import comparison_table, failures_table

    if threads is not None:
        torch.set_num_threads(threads)
    chosen = (
        RayExecutor(address, workers, threads, gpus_per_worker)
        if executor == "ray"
        else LocalExecutor()
    )
    store = Store(results)
    outcome = execute_plan(plan, store, chosen, make_progress(quiet))
    order = {r.run_id: i for i, r in enumerate(plan.runs)}  # columns in the sweep's order
    df = store.results()
    df = df[df["run_id"].isin(order)]
    df = df.sort_values(["run_id", "step"], key=lambda c: c.map(order) if c.name == "run_id" else c)
    out.print(comparison_table(df))
    failed = [r for r in store.runs() if r["run_id"] in outcome.failed]
    if failed:
        out.print(failures_table(failed))
    out.print(
        f"{outcome.runs} runs: {outcome.already_done} already done, {len(outcome.done)} done now, "
        f"{len(outcome.failed)} failed; {outcome.computed} steps computed, "
        f"{outcome.shared + outcome.copied} rows reused ({outcome.shared} shared with a step "
        f"computed now, {outcome.copied} copied from stored steps) ({outcome.seconds:.1f}s)"
    )
    out.print(f"results: {results / 'results.sqlite'}")
    if outcome.failed:
        raise typer.Exit(1)


def _stored_epochs(results: Path, plan) -> dict[str, int]:
    """Planned steps already in `results` (row + checkpoint) with their epochs; writes nothing."""
    from prunebench.store import DB_NAME, Store

    if not (results / DB_NAME).exists():
        return {}
    store = Store(results)
    index = store.step_index()
    return {
        key: index[key]["epochs"]
        for key in plan.nodes
        if key in index and store.checkpoint_path(key).exists()
    }


@app.command()
def results(
    directory: Annotated[Path, typer.Argument(help="results directory")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, csv, json or parquet")
    ] = "table",
    run_id: Annotated[str | None, typer.Option("--run", help="only this run id")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to this file, not stdout")
    ] = None,
) -> None:
    """Print (or export) the stored pruning steps, one row per step; failed runs included."""
    from prunebench.results import EXPORT_FORMATS, load_results
    from prunebench.tables import steps_table

    if fmt not in EXPORT_FORMATS:
        raise PrunebenchError(f"--format must be table, csv, json or parquet, not '{fmt}'")
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        raise PrunebenchError("parquet is binary: pass --output FILE or redirect stdout")
    df = load_results(directory)
    if run_id is not None:
        df = df[df["run_id"] == run_id]
    if fmt == "table":
        out.print(steps_table(df))
        from prunebench.store import open_existing
        from prunebench.tables import failures_table

        unfinished = [r for r in open_existing(directory).runs() if r["status"] != "done"]
        if run_id is not None:
            unfinished = [r for r in unfinished if r["run_id"] == run_id]
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
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


MarginOpt = Annotated[
    float | None,
    typer.Option(help="practical margin: pp of accuracy / % of perplexity (default 0.1 / 1)"),
]
AlphaOpt = Annotated[float, typer.Option(help="family-wise error rate (Holm-corrected)")]


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="results directory")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="output directory (default DIR/report)")
    ] = None,
    figure_format: Annotated[
        str | None, typer.Option("--figures", help="also write each figure: png or svg")
    ] = None,
    margin: MarginOpt = None,
    alpha: AlphaOpt = 0.05,
) -> None:
    """Write an HTML report and a Markdown summary from the results database."""
    from prunebench.report import write_report

    files = write_report(directory, out_dir, figure_format, alpha, margin)
    out.print(f"markdown: {files.markdown}")
    if files.figures:
        out.print(f"figures: {files.figures[0].parent} ({len(files.figures)} files)")
    out.print(f"report: {files.html}")


@app.command()
def advise(
    directory: Annotated[Path, typer.Argument(help="results directory")],
    ratio: Annotated[float | None, typer.Option(help="only this pruning ratio")] = None,
    budget: Annotated[
        float | None, typer.Option(help="retraining budget: mean total fine-tuning epochs")
    ] = None,
    margin: MarginOpt = None,
    alpha: AlphaOpt = 0.05,
) -> None:
    """Which regime to use: the report's decision per ratio (within a budget), with its
    interval, a cheaper equivalent alternative, and the seeds it would take to decide."""
    from prunebench.report.terminal import advise_lines

    lines = advise_lines(directory, ratio=ratio, budget=budget, alpha=alpha, margin=margin)
    for line in lines:
        out.print(line, markup=False, highlight=False)


@app.command()
def export(
    directory: Annotated[Path, typer.Argument(help="results directory")],
    out_dir: Annotated[Path, typer.Argument(help="directory to write the pruned model to")],
    run_id: Annotated[str, typer.Option("--run", help="run id (or a unique prefix)")],
    step: Annotated[int | None, typer.Option(help="pruning step (default: the last)")] = None,
) -> None:
    """Export a pruned model: safetensors weights + JSON structure, loadable with
    prunebench.load_pruned (no pickle)."""
    from prunebench.export import export_step

    path = export_step(directory, run_id, step, out_dir)
    out.print(f"exported to {path.parent} ({path.name} + weights.safetensors)")


def main() -> None:
    try:
        app()
    except PrunebenchError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except TrainingDiverged as exc:
        Console(stderr=True).print(f"[red]training diverged:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
