"""Shared benchmark plumbing (docs/benchmarks.md): interleaved repetitions, medians, the JSON
record."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parents[1] / "results"


def machine() -> dict[str, Any]:
    info = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": "cpu",
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


def interleaved(
    contenders: dict[str, Callable[[], Any]],
    repeats: int,
    cpu: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Wall seconds of each contender, run in turn `repeats` times (noise hits all alike); with
    `cpu`, also the process CPU seconds (all threads), which a busy machine disturbs less."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, call in contenders.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            times[name].append(time.perf_counter() - start)
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - start_cpu)
    return times


def paired(
    contenders: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Like `interleaved` for two contenders, but the order alternates (AB, BA, AB, ...) so that
    neither always runs in the other's wake; `paired_ratio` then compares neighbours. Returns
    (wall seconds, CPU seconds of this process) per contender: for single-threaded work on a
    shared machine the CPU time leaves out the time other processes held the core."""
    (a, call_a), (b, call_b) = contenders.items()
    wall: dict[str, list[float]] = {a: [], b: []}
    cpu: dict[str, list[float]] = {a: [], b: []}
    for i in range(repeats):
        order = [(a, call_a), (b, call_b)] if i % 2 == 0 else [(b, call_b), (a, call_a)]
        for name, call in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median of the per-repetition ratios a_i / b_i: each pair ran back to back under the same
    load, so a machine whose load drifts between repetitions moves both alike."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(
    name: str, ratio: float, goal: float, better: str, unit: str, details: dict[str, Any]
) -> Path:
    """Print the closing line and write benchmarks/results/NAME.json."""
    record = {
        "name": name,
        "ratio": ratio,
        "goal": goal,
        "better": better,
        "unit": unit,
        "details": details,
        "machine": machine(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"{name}: ratio={ratio:.3f} goal={goal} ({better} is better)")
    return path
