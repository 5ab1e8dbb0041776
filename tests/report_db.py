"""Small results databases with exact, hand-chosen numbers, for the report and results tests.

Runs get real validated configs (so variant detection sees real config_json) but no training:
rows are written straight into the Store. A run's final step holds the numbers under test and,
with `examples=n`, per-example test outcomes whose mean is exactly that number (`value * n`
correct examples, or sequence NLLs whose perplexity is `value`), as the runner stores them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from prunebench.config.identity import run_id
from prunebench.config.loading import load_run_config
from prunebench.store.database import Store
from prunebench.store.example_outcomes import pack_correct, pack_nll

TOKENS = 12  # scored tokens per synthetic sequence
SHM = Path("/dev/shm")


@contextmanager
def scratch_dir(fallback: Path) -> Iterator[Path]:
    """A directory in memory-backed storage where the machine has it (SQLite commits cost ten
    times less there, which matters for tests that build many databases), else `fallback`."""
    if not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        yield fallback
        return
    path = Path(tempfile.mkdtemp(prefix="prunebench-", dir=SHM))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def correct_bits(value: float, n: int, key: str, swaps: float = 0.05) -> np.ndarray:
    """`value * n` correct examples: mostly the easiest (low index = easy, the same examples for
    every run, as a shared test split gives), a few swapped per run and seed."""
    k = round(value * n)
    if abs(k - value * n) > 1e-6:
        raise ValueError(f"{value} x {n} examples is not a whole number of correct examples")
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    bits = np.zeros(n, dtype=bool)
    bits[:k] = True
    flips = min(int(swaps * n), k, n - k)
    right, wrong = rng.choice(k, flips, replace=False), k + rng.choice(n - k, flips, replace=False)
    bits[right], bits[wrong] = False, True
    return bits


def sequence_nll(ppl: float, n: int, key: str) -> np.ndarray:
    """Per-sequence NLL sums of TOKENS tokens each whose total perplexity is exactly `ppl`."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    raw = rng.gamma(20.0, 1.0, n)
    return raw / raw.sum() * n * TOKENS * math.log(ppl)


def outcome_blob(metric: str, value: float, n: int, key: str) -> bytes:
    if metric == "ppl":
        return pack_nll(sequence_nll(value, n, key), np.full(n, TOKENS))
    return pack_correct(correct_bits(value, n, key))


REGIME_ARGS = {
    "one_shot": [],
    "constant": ["regime.step=0.1"],
    "geometric": ["regime.rate=0.3"],
    "hybrid": ["regime.first=0.4", "regime.rate=0.2"],
}


def add_run(
    store: Store,
    regime: str,
    target: float,
    seed: int,
    value: float,
    *,
    top5: float | None = None,
    epochs: int = 10,
    criterion: str = "magnitude",
    extra: tuple[str, ...] = (),
    status: str = "done",
    error: str | None = None,
    steps_written: int | None = None,
    metric: str = "top1",
    compression: float | None = 2.0,
    speedup: float | None = None,
    latency: tuple[float, float] | None = None,
    dense: float = 0.99,
    examples: int | None = None,
    outcomes: bytes | None = None,
) -> str:
    """One run whose final step has `value` as its headline metric; returns the run id.
    With `examples`, the final step also stores per-example outcomes (see the module doc);
    `outcomes` stores the given blob instead."""
    overrides = [
        f"regime.name={regime}",
        f"regime.target={target}",
        f"seed={seed}",
        f"prune.criterion={criterion}",
        *REGIME_ARGS[regime],
        *extra,
    ]
    cfg = load_run_config(None, overrides)
    rid = run_id(cfg)
    schedule = cfg.regime.schedule()
    headline = {"top1": "test_top1", "ppl": "test_ppl"}[metric]
    store.start_run(
        rid,
        {
            "regime": regime,
            "target": schedule[-1],
            "structure": cfg.prune.structure,
            "criterion": criterion,
            "scope": cfg.prune.scope,
            "seed": seed,
            "model": cfg.model.name,
            "dataset": cfg.data.name,
            "task": "classification" if metric == "top1" else "causal_lm",
            "metric": metric,
            "base_id": "base0",
            "n_steps": len(schedule),
            "schedule_json": json.dumps(schedule),
            "config_json": json.dumps(cfg.model_dump(mode="json")),
            "dense_params": 1000,
            f"dense_{headline}": dense,
        },
    )
    n = len(schedule) if steps_written is None else steps_written
    rows = []
    for k, target_k in enumerate(schedule[:n], 1):
        final = k == len(schedule)
        row = {
            "run_id": rid,
            "step": k,
            "step_key": f"{rid}-{k}",
            "target": target_k,
            headline: value if final else (0.5 if metric == "top1" else 99.0),
            "test_top5": top5 if final else None,
            "epochs": 1,
            "cumulative_epochs": epochs if final else k,
            "compression_ratio": compression if final else 1.5,
            "speedup": speedup if final else None,
            "latency_ms": latency[0] if final and latency else None,
            "dense_latency_ms": latency[1] if final and latency else None,
        }
        if final and outcomes is not None:
            row["test_outcomes"] = outcomes
        elif final and examples is not None:
            row["test_outcomes"] = outcome_blob(metric, value, examples, f"{rid}-{seed}")
        rows.append((row, []))
    if rows:
        store.write_steps(rows)  # one transaction: many databases stay cheap to build
    store.finish_run(rid, status, error)
    return rid


SEEDS = (0, 1, 2)
EXAMPLES = 400  # test examples of the sample database
TOP1 = {  # regime -> ratio -> per-seed top-1 (main configuration, magnitude)
    "one_shot": {0.5: [0.96, 0.97, 0.95], 0.9: [0.80, 0.82, 0.78]},
    "constant": {0.5: [0.93, 0.94, 0.92], 0.9: [0.88, 0.86, 0.87]},
    "geometric": {0.5: [0.94, 0.93, 0.95], 0.9: [0.90, 0.91, 0.89]},
    "hybrid": {0.5: [0.97, 0.96, 0.975], 0.9: [0.91, 0.905, 0.915]},
}
EPOCHS = {"one_shot": 10, "constant": 40, "geometric": 30, "hybrid": 20}
LABELS = {  # (regime, patience, constant step) -> expected variant label
    ("one_shot", 3, None): "one-shot",
    ("constant", 3, 0.1): "constant step=0.1",
    ("constant", 3, 0.2): "constant step=0.2",
    ("geometric", 3, None): "geometric q=0.3 (patience=3)",
    ("geometric", 1, None): "geometric q=0.3 (patience=1)",
    ("geometric", 5, None): "geometric q=0.3 (patience=5)",
    ("hybrid", 3, None): "hybrid p_k=0.4 q=0.2",
}


def sample_database(root: Path) -> Path:
    """Four regimes x two ratios x three seeds, a random baseline, two ablations, two failures."""
    store = Store(root)
    for regime, by_ratio in TOP1.items():
        for ratio, values in by_ratio.items():
            for seed, value in zip(SEEDS, values, strict=True):
                add_run(
                    store,
                    regime,
                    ratio,
                    seed,
                    value,
                    top5=min(1.0, value + 0.03),
                    epochs=EPOCHS[regime] + seed,
                    compression=1 / (1 - ratio),
                    examples=EXAMPLES,
                )
    for ratio, values in {0.5: [0.5, 0.52], 0.9: [0.1, 0.12]}.items():  # random baseline
        for seed, value in enumerate(values):
            add_run(store, "one_shot", ratio, seed, value, criterion="random", examples=EXAMPLES)
    for patience, values in {1: [0.85, 0.86], 5: [0.905, 0.9]}.items():  # patience ablation
        for seed, value in enumerate(values):
            add_run(
                store,
                "geometric",
                0.9,
                seed,
                value,
                extra=(f"finetune.patience={patience}",),
                epochs=10 * patience,
                examples=EXAMPLES,
            )
    add_run(store, "constant", 0.9, 0, 0.84, extra=("regime.step=0.2",), examples=EXAMPLES)
    add_run(
        store,
        "geometric",
        0.5,
        7,
        0.1,
        status="failed",
        steps_written=1,
        error="TrainingDiverged: loss is nan at epoch 2",
    )
    add_run(store, "hybrid", 0.9, 8, 0.1, status="failed", steps_written=0, error="OOM")
    return root
