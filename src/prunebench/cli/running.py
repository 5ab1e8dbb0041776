"""Commands that compute: `pretrain`, `run` (one regime, optionally data-parallel) and `sweep`
(a grid, on the executor the user picks, or its dry run)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from prunebench.cli.base import (
    DEFAULT_RESULTS,
    DeviceOpt,
    LogOpt,
    QuietOpt,
    ResultsOpt,
    SetOpt,
    check_log,
    out,
    overrides,
    warn_sanity,
)
from prunebench.cli.result_output import run_records
from prunebench.errors import PrunebenchError
from prunebench.outputs import check_output_dir

ConfigArg = Annotated[Path, typer.Argument(help="run config YAML")]


def pretrain(
    config: ConfigArg,
    results: ResultsOpt = DEFAULT_RESULTS,
    set_: SetOpt = None,
    quiet: QuietOpt = False,
    device: DeviceOpt = None,
) -> None:
    """Train and save the dense model that runs with this config start from (reused if present)."""
    from prunebench.config.loading import load_run_config

    cfg = load_run_config(config, overrides(set_, device))
    check_output_dir(results, "--results")
    from prunebench.engine.dense_models import dense_model
    from prunebench.progress import make_progress
    from prunebench.store.database import Store

    store = Store(results)
    dense = dense_model(cfg, store, make_progress(quiet))
    state = "reused" if dense.reused else "trained"
    out.print(f"dense model {dense.base_id} ({state}): {store.dense_path(dense.base_id)}")
    out.print(" ".join(f"{k}={v:.4f}" for k, v in dense.metrics.items()))


def run(
    config: ConfigArg,
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
    from prunebench.config.loading import load_run_config

    cfg = load_run_config(config, overrides(set_, device), seed=seed)
    check_output_dir(results, "--results")
    from prunebench.engine.executors.ddp_launch import (
        check_devices,
        launch,
        without_option,
        world_size,
    )

    if world_size() <= 1:  # the leader of a data-parallel run checks its own copy
        log = check_log(log, results)

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
        log = check_log(log, results)
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
    mine = df[df["run_id"] == result.run_id]
    out.print(steps_table(mine, df["run_id"]))
    warn_sanity(mine, results)


ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor", "-x", help="local (in this process), processes (on this machine) or ray"
    ),
]


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
    started = time.monotonic()  # the one clock of the display, the summary and the wall time
    from prunebench.config.sweep_grid import load_sweep
    from prunebench.engine.executors.choice import choose_executor

    _, configs, skipped = load_sweep(sweep_file, overrides(set_, device))
    rounds = None
    if until_decided:
        from prunebench.cli.until_decided import design_for

        rounds = design_for(configs, results, max_seeds, budget, budget_hours)
    elif max_seeds is not None or budget is not None or budget_hours is not None:
        raise PrunebenchError("--max-seeds, --budget and --budget-hours need --until-decided")
    choice = choose_executor(executor, configs, workers, threads, address, gpus_per_step)
    if not dry_run:
        check_output_dir(results, "--results")
    log = check_log(log, results)
    for reason in skipped:
        out.print(f"[yellow]skipped[/]: {reason}")
    from prunebench.engine.plan import build_plan

    plan = build_plan(configs)
    if dry_run:
        _print_dry_run(plan, results, estimate, choice.threads, choice.workers)
        if rounds is not None:
            from prunebench.cli.until_decided import dry_run_lines

            for line in ["", *dry_run_lines(configs, rounds[0], results)]:
                out.print(line, markup=False, highlight=False)
        return
    from prunebench.engine.driver import execute_plan
    from prunebench.engine.executors.factory import make_executor
    from prunebench.progress import make_progress
    from prunebench.store.database import Store

    chosen = make_executor(choice)
    if rounds is not None:
        from prunebench.cli.until_decided import run_until_decided

        def execute(cfgs):
            return execute_plan(build_plan(cfgs), Store(results), chosen, make_progress(quiet),
                                log, sweep_file.stem, started=started)  # fmt: skip

        done, lines = run_until_decided(configs, results, *rounds, execute)
        for line in lines:
            out.print(line, markup=False, highlight=False)
        out.print(f"results: {results / 'results.sqlite'}")
        if any(o.failed for o in done.outcomes):
            raise typer.Exit(1)
        return
    outcome = execute_plan(
        plan, Store(results), chosen, make_progress(quiet), log, sweep_file.stem, started=started
    )
    _print_sweep(plan, outcome, results)
    if outcome.failed:
        raise typer.Exit(1)


def _print_dry_run(
    plan, results: Path, estimate: bool, threads: int | None, workers: int | None
) -> None:
    """The plan's tree and counts, and (with `estimate`) its timed wall time; writes nothing."""
    from prunebench.engine.dry_run import check_sources, estimate_lines, plan_lines
    from prunebench.store.database import Store

    check_sources(r.cfg for r in plan.runs)
    store = Store(results)
    stored = store.stored_epochs(plan.nodes)
    lines = plan_lines(plan, stored)
    if estimate:
        from prunebench.config.identity import base_id
        from prunebench.engine.executors.factory import set_threads

        set_threads(threads)
        bases = {base_id(r.cfg) for r in plan.runs}
        stored_dense = {bid for bid in bases if store.dense_path(bid).exists()}
        lines += estimate_lines(plan, stored, stored_dense, workers)
    for line in lines:
        out.print(line, markup=False, highlight=False)


def _print_sweep(plan, outcome, results: Path) -> None:
    """The sweep's runs side by side in the sweep's order, its failures, and what was done."""
    from prunebench.progress import duration
    from prunebench.store.results import load_results
    from prunebench.tables import comparison_table, failures_table

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
        f"computed now, {outcome.copied} copied from stored steps) in {duration(outcome.seconds)}"
    )
    out.print(f"results: {results / 'results.sqlite'}")
    warn_sanity(df, results)
