"""`prunebench run --nproc N`: ONE run fine-tuned data-parallel by N processes (torchrun + DDP).

`launch` starts N copies of the same command through torchrun (`--standalone`, one machine);
`torchrun --nproc-per-node N -m prunebench run ...` does the same by hand, on several machines
too. In every copy `start` joins the process group (NCCL on CUDA, one GPU per rank; gloo on
the CPU). Rank 0 is the leader: it runs the ordinary driver, the ONLY writer of the results
directory (it loads or pretrains the dense model alone, then stores every row), with
`DataParallelExecutor`, which sends each step (and the dense model, once) to the other ranks
before computing it. The followers compute the same steps in lockstep (`follow`) and never open
the results directory; what is shared between ranks inside a step is in `ddp_rank.py`.
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import Any

import torch
import torch.distributed as dist

from prunebench.config.identity import base_id, run_id
from prunebench.config.schema import RunConfig
from prunebench.data.base import DataBundle
from prunebench.devices import resolve_device
from prunebench.engine.executors.base import StepJob, compute_job
from prunebench.engine.executors.ddp_rank import DataParallel
from prunebench.engine.executors.local import LocalExecutor
from prunebench.engine.executors.workers import dense_from_payload, dense_payload
from prunebench.engine.pretrain import Dense
from prunebench.engine.step import RunContext
from prunebench.engine.workspace import Workspace
from prunebench.errors import PrunebenchError
from prunebench.progress import Progress
from prunebench.tasks import Task

# Followers wait in a collective while the leader pretrains a missing dense model: pretrain
# first (`prunebench pretrain`) when that takes longer.
TIMEOUT = datetime.timedelta(hours=3)


def world_size() -> int:
    """Processes in this launch (torchrun's WORLD_SIZE; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def without_option(argv: list[str], option: str) -> list[str]:
    """`argv` without `option VALUE` / `option=VALUE` (what each launched copy runs)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def check_devices(cfg: RunConfig, nproc: int) -> None:
    """On CUDA every process needs its own GPU; say so before starting any."""
    device = resolve_device(cfg.device)
    if device.type == "cuda" and torch.cuda.device_count() < nproc:
        raise PrunebenchError(
            f"--nproc {nproc} needs {nproc} GPUs on CUDA, {torch.cuda.device_count()} are "
            "visible; use fewer processes (or --device cpu for gloo)"
        )


def launch(nproc: int, argv: list[str]) -> int:
    """Run `python -m prunebench ARGV` in `nproc` processes through torchrun; the exit code of
    the first one that failed, else 0."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, without its warning
    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--module", "prunebench", *argv]
    )
    try:
        torchrun(args)
    except ChildFailedError as exc:
        codes = [f.exitcode for _, f in sorted(exc.failures.items())]
        return next((c for c in codes if c > 0), 1)
    return 0


def start(cfg: RunConfig) -> DataParallel:
    """Join the process group torchrun set up; on CUDA each rank takes its local GPU."""
    device = resolve_device(cfg.device)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        device = torch.device("cuda", torch.cuda.current_device())
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return DataParallel(rank, world, device)


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class DataParallelExecutor(LocalExecutor):
    """The leader's executor: one step at a time, computed by every rank together."""

    name = "ddp"

    def __init__(self, parallel: DataParallel) -> None:
        super().__init__()
        self.parallel = parallel
        self._contexts: dict[str, RunContext] = {}
        self._shipped: set[str] = set()
        self._stopped = False

    def context(self, job: StepJob) -> RunContext:
        """Send the job (and the dense model, the first time) to the followers; then this rank's
        context for it: the driver's data and dense model, seen through `parallel`."""
        ws = self._workspace
        bid = base_id(job.cfg)
        payload = None if bid in self._shipped else dense_payload(ws.dense(job.cfg))
        self._shipped.add(bid)
        self.parallel.broadcast((job, payload))
        rid = run_id(job.cfg)
        if rid not in self._contexts:
            data, dense = ws.data(job.cfg), ws.dense(job.cfg)
            self._contexts[rid] = RunContext(job.cfg, data, dense, ws.progress, self.parallel)
        return self._contexts[rid]

    def close(self) -> None:
        """Tell the followers to stop (once; the leader calls it however it ends)."""
        super().close()
        if not self._stopped:
            self._stopped = True
            self.parallel.broadcast(None)


def follow(parallel: DataParallel) -> None:
    """A follower: compute each step the leader sends, in lockstep, until it says stop. Writes
    nothing; its result is the leader's (its errors are printed for the log)."""
    shipped: dict[str, Any] = {}

    def dense_from_leader(cfg: RunConfig, data: DataBundle, task: Task, device) -> Dense:
        return dense_from_payload(cfg, shipped[base_id(cfg)], data)

    workspace = Workspace(dense_from_leader)
    contexts: dict[str, RunContext] = {}
    while (message := parallel.broadcast()) is not None:
        job, payload = message
        if payload is not None:
            shipped[base_id(job.cfg)] = payload
        rid = run_id(job.cfg)
        if rid not in contexts:
            cfg = job.cfg
            data, dense = workspace.data(cfg), workspace.dense(cfg)
            contexts[rid] = RunContext(cfg, data, dense, Progress(), parallel)
        result = compute_job(contexts[rid], job)
        if result.error is not None:
            print(f"rank {parallel.rank}: {result.error}", file=sys.stderr)
