"""What a model is asked to do: the training loss and the reported metrics.

Classification reports top-1 / top-5 accuracy (fractions); its headline metric is top-1.
Causal language modelling reports perplexity = exp(total token NLL / total tokens).
Metrics are sums over the whole split divided by its size, never means of batch means; the sums
stay on the device until one transfer at the end of an evaluation (no per-batch sync). Forward
passes run under the device's autocast (bf16 on CUDA, nothing on the CPU).
`evaluate(..., outcomes=True)` also returns the per-example results (prunebench.store.example_outcomes), in
the split's order, so that reports can pair regimes example by example.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from prunebench.accel import autocast, prepare_inputs, prepare_model
from prunebench.data.base import Batch, to_device
from prunebench.registry import Registry
from prunebench.store.example_outcomes import pack_correct, pack_nll, with_groups

TASKS: Registry[type[Task]] = Registry("task")


def logits_of(output) -> torch.Tensor:
    """Logits from a plain module's tensor or a Hugging Face model's output object."""
    return output.logits if hasattr(output, "logits") else output


class Task:
    """Subclasses give the loss and the per-batch sums of their metrics; `evaluate` adds the sums
    over the whole split and divides once."""

    name = "task"
    metric = "metric"  # the headline metric's name, e.g. 'top1' or 'ppl'
    higher_is_better = True

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return logits_of(model(prepare_inputs(inputs, model)))

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Mean loss over the batch, for backward."""
        inputs, targets = batch
        return self.loss_of(self.forward(model, inputs), targets)

    def loss_of(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch's outputs."""
        raise NotImplementedError

    def scored_rows(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, classes): the output rows the loss scores (distillation compares these)."""
        return outputs

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sums over one batch, including 'count' (samples or scored tokens)."""
        raise NotImplementedError

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        raise NotImplementedError

    def reduce_sums(self, sums: torch.Tensor) -> torch.Tensor:
        """Sums over the data this process saw -> sums over all of it. One process sees all of
        it; data-parallel ranks (parallel.ReducedTask) add theirs together."""
        return sums

    def gather_rows(self, rows: list[torch.Tensor]) -> torch.Tensor:
        """Per-example rows of the whole split, in its order, on the CPU (one process saw all of
        it; data-parallel ranks, parallel.ReducedTask, put their parts together)."""
        return torch.cat(rows).cpu()

    def batch_outcomes(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One row per example of the batch (what `pack_outcomes` stores)."""
        raise NotImplementedError

    def pack_outcomes(self, rows: np.ndarray) -> bytes:
        raise NotImplementedError

    def evaluate(
        self,
        model: nn.Module,
        batches: Iterable[Batch],
        device: torch.device,
        outcomes: bool = False,
        groups: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        """Whole-split metrics; with `outcomes`, also 'outcomes': the per-example blob (with
        `groups`, a group id per example, stored in it)."""
        was_training = model.training
        model.eval()
        # Outside inference mode: a conversion inside it would turn the weights into inference
        # tensors, which training cannot use afterwards.
        prepare_model(model, device)
        totals: dict[str, torch.Tensor] = {}
        rows: list[torch.Tensor] = []
        try:
            with torch.inference_mode():
                for batch in batches:
                    inputs, targets = to_device(batch, device)
                    with autocast(device):
                        outputs = self.forward(model, inputs).float()
                    for key, value in self.batch_sums(outputs, targets).items():
                        totals[key] = totals[key] + value if key in totals else value
                    if outcomes:
                        rows.append(self.batch_outcomes(outputs, targets))
        finally:
            model.train(was_training)
        if not totals:
            raise ValueError("cannot evaluate on an empty split")
        # one vector, one transfer: the only host sync of an evaluation (float64 holds the
        # integer counts exactly)
        keys = list(totals)
        vector = torch.stack([totals[k].to(device, torch.float64) for k in keys])
        sums = dict(zip(keys, self.reduce_sums(vector).tolist(), strict=True))
        if sums["count"] == 0:
            raise ValueError("cannot evaluate on an empty split")
        result: dict[str, Any] = self.metrics(sums)
        if outcomes:
            blob = self.pack_outcomes(self.gather_rows(rows).numpy())
            result["outcomes"] = with_groups(blob, None if groups is None else groups.numpy())
        return result


class Classification(Task):
    name = "classification"
    metric = "top1"
    higher_is_better = True

    def loss_of(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets)

    @staticmethod
    def _hits(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, k): whether the i-th best class is the target, k = min(5, classes)."""
        top = outputs.topk(min(5, outputs.shape[1]), dim=1).indices
        return top.eq(targets.unsqueeze(1))

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        hits = self._hits(outputs, targets)
        return {
            "loss": F.cross_entropy(outputs, targets, reduction="sum").double(),
            "top1": hits[:, 0].sum(),
            "top5": hits.any(dim=1).sum(),
            "count": torch.tensor(len(targets)),
        }

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        count = sums["count"]
        return {
            "loss": sums["loss"] / count,
            "top1": sums["top1"] / count,
            "top5": sums["top5"] / count,
        }

    def batch_outcomes(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self._hits(outputs, targets)[:, 0]  # the very bits that top-1 counts

    def pack_outcomes(self, rows: np.ndarray) -> bytes:
        return pack_correct(rows)


TASKS.register("classification", Classification)


class CausalLM(Task):
    """Next-token prediction. Batches are (input_ids, target_ids), both (B, T): the targets are
    the inputs shifted by one token (data/text.py); -100 marks a position that is not scored."""

    name = "causal_lm"
    metric = "ppl"
    higher_is_better = False
    ignore_index = -100

    def _nll(self, logits: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            targets.reshape(-1),
            ignore_index=self.ignore_index,
            reduction=reduction,
        )

    def loss_of(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self._nll(outputs, targets, "mean")

    def scored_rows(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return outputs.reshape(-1, outputs.shape[-1])[targets.reshape(-1) != self.ignore_index]

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "loss": self._nll(outputs, targets, "sum").double(),
            "count": (targets != self.ignore_index).sum(),
        }

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        loss = sums["loss"] / sums["count"]
        return {"loss": loss, "ppl": math.exp(loss)}

    def batch_outcomes(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, 2): each sequence's NLL sum and its number of scored tokens."""
        nll = self._nll(outputs, targets, "none").view(targets.shape).double().sum(dim=1)
        tokens = (targets != self.ignore_index).sum(dim=1)
        return torch.stack([nll, tokens.double()], dim=1)

    def pack_outcomes(self, rows: np.ndarray) -> bytes:
        return pack_nll(rows[:, 0], rows[:, 1])


TASKS.register("causal_lm", CausalLM)


def make_task(name: str) -> Task:
    return TASKS.get(name)()
