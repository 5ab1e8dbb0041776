"""One rank of data-parallel fine-tuning (`prunebench run --nproc N`): what differs from one
process.

Every rank runs the same step with the same seed (from the step key), so it draws the same
shuffle and augmentation and takes its contiguous part of every global batch (`Shard`): the
global batch size stays `data.batch_size`, as in a single process. Gradients are averaged by
DistributedDataParallel; metric sums and the training loss are added over the ranks before
they leave the device (`ReducedTask`), so every rank sees the same validation metric and takes
the same early-stopping decision. Calibration data stays whole: every rank scores and prunes
alike, and `agree` checks it (structure) and enforces it (weights and masks from rank 0).
Process start-up and the leader / follower roles are in `ddp.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist
from torch import nn

from prunebench.data.base import Batch, DataBundle
from prunebench.errors import PrunebenchError
from prunebench.pruning.base import Pruner
from prunebench.tasks import Task


def bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """This rank's contiguous part of n samples: sizes differ by at most one."""
    return n * rank // world, n * (rank + 1) // world


class Shard:
    """This rank's part of every batch of a stream (re-iterable, like the stream).

    Training (`skip_small`) drops a global batch with fewer samples than ranks, on every rank
    alike, so that no rank does a backward pass the others skip. Evaluation keeps every sample
    (a rank's part may be empty)."""

    def __init__(self, batches: Iterable[Batch], rank: int, world: int, skip_small: bool) -> None:
        self.batches, self.rank, self.world, self.skip_small = batches, rank, world, skip_small

    def __iter__(self) -> Iterator[Batch]:
        for inputs, targets in self.batches:
            n = len(targets)
            if self.skip_small and n < self.world:
                continue
            start, stop = bounds(n, self.rank, self.world)
            yield inputs[start:stop], targets[start:stop]


class ReducedTask(Task):
    """A task whose sums (metrics, training loss) are added over all ranks before use."""

    def __init__(self, inner: Task) -> None:
        self.inner = inner
        self.name, self.metric = inner.name, inner.metric
        self.higher_is_better = inner.higher_is_better

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return self.inner.forward(model, inputs)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.inner.loss(model, batch)

    def loss_of(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.inner.loss_of(outputs, targets)

    def scored_rows(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.inner.scored_rows(outputs, targets)

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.inner.batch_sums(outputs, targets)

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        return self.inner.metrics(sums)

    def reduce_sums(self, sums: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(sums)
        return sums

    def batch_outcomes(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.inner.batch_outcomes(outputs, targets)

    def pack_outcomes(self, rows):
        return self.inner.pack_outcomes(rows)

    def gather_rows(self, rows: list[torch.Tensor]) -> torch.Tensor:
        """Every rank's part of every batch, back in the split's order (`Shard` gives rank r
        the r-th contiguous part of each batch)."""
        parts: list[list[torch.Tensor] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, [r.cpu() for r in rows])
        return torch.cat([part[b] for b in range(len(rows)) for part in parts])


def _fingerprint(model: nn.Module, pruner: Pruner) -> str:
    """What must be equal on every rank after pruning: the pruner's decisions (structured: the
    pruning history), every tensor's shape and the weights each mask keeps (their count: which
    ones may differ where a GPU breaks score ties differently; rank 0's are then taken)."""
    _, meta = pruner.state()
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    kept = {k: int(m.sum()) for k, m in pruner.masks.keep.items()} if pruner.masks else {}
    text = json.dumps({"pruner": meta, "shapes": shapes, "kept": kept}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class DataParallel:
    """This process's place in the data-parallel group (torch.distributed is initialised)."""

    rank: int
    world: int
    device: torch.device

    def shard(self, data: DataBundle) -> DataBundle:
        """This rank's view: its part of every training and evaluation batch; calibration whole."""
        return replace(
            data,
            train=Shard(data.train, self.rank, self.world, skip_small=True),
            val=Shard(data.val, self.rank, self.world, skip_small=False),
            test=Shard(data.test, self.rank, self.world, skip_small=False),
        )

    def task(self, task: Task) -> Task:
        return ReducedTask(task)

    def wrap(self, model: nn.Module) -> nn.Module:
        """DistributedDataParallel around `model` (one per fine-tuning phase: structured pruning
        replaces the parameters). Its construction copies rank 0's weights to every rank."""
        ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def broadcast(self, obj: object = None) -> object:
        """Rank 0's `obj` on every rank (pickled; tensors included)."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    @torch.no_grad()
    def agree(self, model: nn.Module, pruner: Pruner) -> None:
        """After pruning: the same structure and kept counts on every rank (checked: a difference
        is a bug or a non-deterministic criterion), then rank 0's weights and keep-masks
        everywhere."""
        prints: list[str | None] = [None] * self.world
        dist.all_gather_object(prints, _fingerprint(model, pruner))
        if len(set(prints)) > 1:
            raise PrunebenchError(
                "data-parallel ranks pruned differently (a non-deterministic criterion or "
                "calibration data that differ between ranks); run with --nproc 1"
            )
        for tensor in model.state_dict().values():
            _broadcast_into(tensor)
        if pruner.masks is not None:
            keep = {}
            for name, mask in pruner.masks.keep.items():
                as_bytes = mask.to(torch.uint8)
                dist.broadcast(as_bytes, src=0)
                keep[name] = as_bytes.bool()
            pruner.masks.set(keep)
            pruner.masks.apply()


def _broadcast_into(tensor: torch.Tensor) -> None:
    """Rank 0's values into `tensor` in place (through a contiguous copy where needed)."""
    buffer = tensor if tensor.is_contiguous() else tensor.contiguous()
    dist.broadcast(buffer, src=0)
    if buffer is not tensor:
        tensor.copy_(buffer)
