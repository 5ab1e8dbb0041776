"""Peak memory of structured pruning of a language model with a data-dependent criterion.

A randomly initialised Llama-style causal LM (~290M parameters: hidden 1024, 20 layers, 16
heads / 4 key-value heads, MLP 2816, vocabulary 32000) is built on the CPU through prunebench
(`model.name=hf`); then, while the peak resident memory is tracked, a StructuredPruner is built
on it (Torch-Pruning's graph, the head-cut trial) and one structured step to 30 % runs with the
Taylor criterion (gradients of the mean loss over 8 calibration sequences of 128 tokens in
batches of --batch, default 1; the gradient sums of at most 64M weights at once, so 4 passes over
the batches; each layer's scores reduced to channel totals as they arrive; the rollback
snapshot spilled to a temporary file; prune.uniform_widths). ratio = peak resident memory of
the process during that work / the size of the fp32 weights (the weights themselves count 1.0;
goal 2.0). The resident memory before the model (the runtime: python, torch, transformers,
Torch-Pruning) and before scoring, the peak above the runtime, the time of each phase and the
parameter counts are recorded too. One measurement, not a comparison: it is the memory a user
needs.

Heavy (minutes, ~3 GB): run it alone, `nice .venv/bin/python benchmarks/llm_memory.py`
(--layers N for a smaller model).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from prunebench.config.schema import ModelConfig, PruneConfig
from prunebench.data.info import DataInfo
from prunebench.models.build import build_model, model_spec
from prunebench.pruning.factory import make_pruner
from prunebench.tasks import make_task
from support.common import report

VOCAB, SEQ = 32000, 128
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakRss:
    """The largest resident size seen while inside (sampled every 5 ms, and the kernel's own
    high-water mark where it can be reset)."""

    def __enter__(self) -> PeakRss:
        self.peak = rss()
        self.stop = threading.Event()
        try:  # reset VmHWM (Linux); the sampler covers kernels that refuse
            Path("/proc/self/clear_refs").write_text("5")
            self.hwm = True
        except OSError:
            self.hwm = False
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, rss())
        if self.hwm:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak = max(self.peak, int(line.split()[1]) * 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    # sequences per calibration batch: backward keeps every layer's activations of one batch
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = {"model_type": "llama", "vocab_size": VOCAB, "hidden_size": 1024,
              "intermediate_size": 2816, "num_hidden_layers": args.layers,
              "num_attention_heads": 16, "num_key_value_heads": 4,
              "max_position_embeddings": 256, "bos_token_id": 1, "eos_token_id": 2,
              "pad_token_id": 0}  # fmt: skip
    info = DataInfo(task="causal_lm", vocab_size=VOCAB, seq_len=SEQ)
    model_cfg = ModelConfig(name="hf", options={"config": config})
    runtime = rss()  # python, torch, transformers, Torch-Pruning: before any weight exists
    start = time.perf_counter()
    model = build_model(model_cfg, info)
    build_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    weights = sum(p.numel() * 4 for p in model.parameters())  # fp32 bytes
    ids = torch.randint(3, VOCAB, (8, SEQ + 1))
    size = args.batch
    batches = [(ids[i : i + size, :-1], ids[i : i + size, 1:]) for i in range(0, 8, size)]
    prune = PruneConfig(structure="structured", criterion="taylor", uniform_widths=True,
                        latency=False, calibration_samples=8)  # fmt: skip
    before = rss()
    with PeakRss() as setup_peak:
        start = time.perf_counter()
        pruner = make_pruner(prune, model, model_spec(model_cfg), info)
        setup_s = time.perf_counter() - start
    with PeakRss() as step_peak:
        start = time.perf_counter()
        model = pruner.prune_to(model, 0.3, batches, make_task("causal_lm"))
        step_s = time.perf_counter() - start
    peak = max(setup_peak.peak, step_peak.peak)
    after = sum(p.numel() for p in model.parameters())
    gib = 2**30
    rows = [
        ("parameters (dense / pruned)", f"{params / 1e6:.1f} M / {after / 1e6:.1f} M"),
        ("fp32 weights", f"{weights / gib:.2f} GiB"),
        ("resident before the model (runtime)", f"{runtime / gib:.2f} GiB"),
        ("resident before scoring", f"{before / gib:.2f} GiB ({before / weights:.2f} x)"),
        ("peak above the runtime / weights", f"{(peak - runtime) / weights:.2f} x"),
        ("peak during pruner set-up", f"{setup_peak.peak / gib:.2f} GiB"),
        ("peak during scoring + step", f"{step_peak.peak / gib:.2f} GiB"),
        ("peak (ratio)", f"{peak / gib:.2f} GiB ({peak / weights:.2f} x)"),
        ("build model", f"{build_s:.1f} s"),
        ("pruner set-up (graph, head trial)", f"{setup_s:.1f} s"),
        ("scoring + one structured step", f"{step_s:.1f} s"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    report(
        "llm_memory",
        peak / weights,
        2.0,
        "lower",
        "peak resident memory / fp32 weights",
        {
            "layers": args.layers,
            "parameters_dense": params,
            "parameters_pruned": after,
            "weights_bytes": weights,
            "rss_runtime_bytes": runtime,
            "rss_before_bytes": before,
            "peak_above_runtime_ratio": (peak - runtime) / weights,
            "rss_before_ratio": before / weights,
            "peak_bytes": peak,
            "setup_peak_bytes": setup_peak.peak,
            "step_peak_bytes": step_peak.peak,
            "build_seconds": build_s,
            "setup_seconds": setup_s,
            "step_seconds": step_s,
            "criterion": "taylor",
            "calibration": f"8 sequences x 128 tokens, batches of {size}",
            "target": 0.3,
        },
    )


if __name__ == "__main__":
    main()
