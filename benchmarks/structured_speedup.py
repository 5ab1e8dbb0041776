"""Measured vs MACs speed-up of structurally pruned ResNet-18 (CIFAR variant) on this CPU.

For channel ratios 0.3, 0.5, 0.7 and 0.9 (uniform per-layer, magnitude; weights do not change
latency), each variant is timed against a dense model treated the same way, in one run with
interleaved repetitions and medians (docs/benchmarks.md):
  raw          Torch-Pruning's output as is, vs the dense model as is (eager PyTorch, NCHW);
  torch        channels rounded to multiples of 16 at pruning time, then
               prunebench.export.inference.lean(backend="torch"): BatchNorm folded, channels_last, eager;
  torchscript  the same rounding, then TorchScript trace + freeze: what `lean` did before
               (deprecated in torch 2.14; kept here as the before/after comparison);
  onnxruntime  the same rounding, then prunebench.export.inference.lean(): ONNX export run by an
               onnxruntime CPU session with all graph optimizations (the pruned vs dense ORT
               latency at the same batch).
ratio = measured speed-up / MACs speed-up of `lean` (onnxruntime) at channel ratio 0.7.

Run from the repository root: python benchmarks/structured_speedup.py [--rounds N] [--threads T]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent / "support"))
from common import report

from prunebench.config.loading import load_run_config
from prunebench.data import DataInfo
from prunebench.export.inference import lean
from prunebench.measure import count_macs
from prunebench.models import MODELS
from prunebench.pruning.factory import make_pruner

NAME = "structured_speedup"
RATIOS = (0.3, 0.5, 0.7, 0.9)
BATCH = 64
ROUND_TO = 16  # AVX-512 computes on blocks of 16 floats
GOAL, GOAL_AT_05 = 0.7, 0.9
INFO = DataInfo("classification", num_classes=10, in_channels=3, image_size=32)


def pruned_model(ratio: float, round_to: int | None):
    torch.manual_seed(0)
    model = MODELS.get("resnet18_cifar").build(INFO)
    if ratio == 0:
        return model.eval()
    overrides = ["prune.structure=structured", "prune.scope=layerwise", "prune.latency=false"]
    if round_to:
        overrides.append(f"prune.round_to={round_to}")
    cfg = load_run_config(None, overrides).prune
    pruner = make_pruner(cfg, model, MODELS.get("resnet18_cifar"), INFO)
    pruner.prune_to(model, ratio)
    return model.eval()


VARIANTS = ("raw", "torch", "torchscript", "onnxruntime")
HEADLINE = "onnxruntime"  # what prunebench.export.inference.lean gives by default


@torch.no_grad()
def torchscript(model: torch.nn.Module, batch: torch.Tensor):
    """The former `lean`: BatchNorm folded, channels_last, TorchScript trace + freeze."""
    slim = lean(model, batch, backend="torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated
        module = torch.jit.freeze(torch.jit.trace(copy.deepcopy(slim.module), slim.inputs).eval())
    return module, slim.inputs, [*slim.steps, "jit-freeze"]


def build_candidates(batch: torch.Tensor, threads: int):
    """(ratio, variant) -> (callable, inputs, MACs of one image); and the steps of each."""
    out, steps = {}, {}
    for ratio in (0.0, *RATIOS):
        raw = pruned_model(ratio, None)
        rounded = pruned_model(ratio, ROUND_TO)
        for variant in VARIANTS:
            model = raw if variant == "raw" else rounded
            macs = count_macs(model, batch[:1]).total
            if variant == "raw":
                out[(ratio, variant)] = (model, batch, macs)
                steps[variant] = ["eager", "nchw"]
                continue
            if variant == "torchscript":
                module, inputs, steps[variant] = torchscript(model, batch)
            else:
                slim = lean(model, batch, backend=variant, threads=threads)
                module, inputs, steps[variant] = slim.module, slim.inputs, slim.steps
            with torch.inference_mode():
                error = (module(inputs) - model(batch)).abs().max().item()
            if error > 1e-3:
                raise SystemExit(f"{variant} export of ratio {ratio} differs by {error}")
            out[(ratio, variant)] = (module, inputs, macs)
    return out, steps


@torch.inference_mode()
def time_all(candidates, rounds: int, min_time: float):
    """Interleaved rounds; per round each model runs enough forwards to fill `min_time`."""
    repeats = {}
    for key, (module, inputs, _) in candidates.items():
        for _ in range(2):  # warm-up (oneDNN primitives, TorchScript profiling runs)
            module(inputs)
        start = time.perf_counter()
        module(inputs)
        repeats[key] = max(1, round(min_time / (time.perf_counter() - start)))
    wall = {k: [] for k in candidates}
    cpu = {k: [] for k in candidates}
    for _ in range(rounds):
        for key, (module, inputs, _) in candidates.items():
            n = repeats[key]
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                module(inputs)
            wall[key].append(1000 * (time.perf_counter() - w0) / n)
            cpu[key].append(1000 * (time.process_time() - c0) / n)
    return (
        {k: statistics.median(v) for k, v in wall.items()},
        {k: statistics.median(v) for k, v in cpu.items()},
        repeats,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.25, help="seconds per timing")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: steadiest on a shared CPU)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    batch = torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    candidates, steps = build_candidates(batch, args.threads)
    wall, cpu, repeats = time_all(candidates, args.rounds, args.min_time)

    rows = []
    for ratio in RATIOS:
        for variant in VARIANTS:
            key, dense = (ratio, variant), (0.0, variant)
            macs_speedup = candidates[dense][2] / candidates[key][2]
            measured = wall[dense] / wall[key]
            rows.append(
                {
                    "channel_ratio": ratio,
                    "variant": variant,
                    "macs_m": candidates[key][2] / 1e6,
                    "macs_speedup": macs_speedup,
                    "latency_ms": wall[key],
                    "dense_latency_ms": wall[dense],
                    "measured_speedup": measured,
                    "ratio": measured / macs_speedup,
                    "cpu_ms": cpu[key],
                    "dense_cpu_ms": cpu[dense],
                    "cpu_ratio": (cpu[dense] / cpu[key]) / macs_speedup,
                    "forwards_per_timing": repeats[key],
                }
            )

    print(f"ResNet-18 (CIFAR), batch {BATCH}, {args.threads} thread(s), {args.rounds} rounds")
    header = f"{'ratio':>5} {'variant':>11} {'MMACs':>7} {'MACs x':>7} {'ms':>8} {'dense ms':>9} {'measured x':>10} {'meas/MACs':>9} {'cpu meas/MACs':>13}"
    print(header)
    for r in rows:
        print(
            f"{r['channel_ratio']:>5} {r['variant']:>11} {r['macs_m']:>7.1f} {r['macs_speedup']:>7.2f} "
            f"{r['latency_ms']:>8.1f} {r['dense_latency_ms']:>9.1f} {r['measured_speedup']:>10.2f} "
            f"{r['ratio']:>9.3f} {r['cpu_ratio']:>13.3f}"
        )

    def pick(ratio, variant=HEADLINE):
        return next(r for r in rows if r["channel_ratio"] == ratio and r["variant"] == variant)

    by_variant = {v: {r: pick(r, v)["ratio"] for r in RATIOS} for v in VARIANTS}
    for variant, ratios in by_variant.items():
        shown = "  ".join(f"{r}: {v:.3f}" for r, v in ratios.items())
        print(f"measured / MACs  {variant:<12} {shown}")
    report(
        NAME,
        pick(0.7)["ratio"],
        GOAL,
        "higher",
        "measured / MACs speed-up, lean export (onnxruntime), channel ratio 0.7",
        {
            "ratio_at_0.5": pick(0.5)["ratio"],
            "goal_at_0.5": GOAL_AT_05,
            "ratio_by_variant": by_variant,
            "headline_variant": HEADLINE,
            "rows": rows,
            "batch": BATCH,
            "round_to": ROUND_TO,
            "optimizations": {
                v: ([] if v == "raw" else [f"round_to={ROUND_TO}"]) + s for v, s in steps.items()
            },
            "rounds": args.rounds,
            "min_time_s": args.min_time,
            "timing": "wall-clock medians of interleaved rounds (cpu_ms: process CPU time)",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "load_average": os.getloadavg(),
            "seconds": time.perf_counter() - started,
        },
    )


if __name__ == "__main__":
    main()
