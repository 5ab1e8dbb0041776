"""What a model is asked to do: the training loss and the reported metrics.

Classification reports top-1 / top-5 accuracy (fractions); its headline metric is top-1.
Metrics are sums over the whole split divided by its size, never means of batch means.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from prunebench.data.base import Batch, to_device
from prunebench.registry import Registry

TASKS: Registry[type[Task]] = Registry("task")


class Task:
    name = "task"
    metric = "metric"  # the headline metric's name, e.g. 'top1' or 'ppl'
    higher_is_better = True

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model(inputs)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Mean loss over the batch, for backward."""
        raise NotImplementedError

    def evaluate(
        self, model: nn.Module, batches: Iterable[Batch], device: torch.device
    ) -> dict[str, float]:
        raise NotImplementedError


class Classification(Task):
    name = "classification"
    metric = "top1"
    higher_is_better = True

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        return F.cross_entropy(self.forward(model, inputs), targets)

    @torch.inference_mode()
    def evaluate(
        self, model: nn.Module, batches: Iterable[Batch], device: torch.device
    ) -> dict[str, float]:
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct1 = torch.zeros((), dtype=torch.long, device=device)
        correct5 = torch.zeros((), dtype=torch.long, device=device)
        count = 0
        for batch in batches:
            inputs, targets = to_device(batch, device)
            logits = self.forward(model, inputs).float()
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").double()
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            hits = top.eq(targets.unsqueeze(1))
            correct1 += hits[:, 0].sum()
            correct5 += hits.any(dim=1).sum()
            count += len(targets)
        model.train(was_training)
        if count == 0:
            raise ValueError("cannot evaluate on an empty split")
        return {
            "loss": float(loss_sum) / count,
            "top1": int(correct1) / count,
            "top5": int(correct5) / count,
        }


TASKS.register("classification", Classification)


def make_task(name: str) -> Task:
    return TASKS.get(name)()
