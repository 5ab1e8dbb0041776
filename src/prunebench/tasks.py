"""What a model is asked to do: the training loss and the reported metrics.

Classification reports top-1 / top-5 accuracy (fractions); its headline metric is top-1.
Causal language modelling reports perplexity = exp(total token NLL / total tokens).
Metrics are sums over the whole split divided by its size, never means of batch means.
Forward passes run under the device's autocast (bf16 on CUDA, nothing on the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from prunebench.accel import autocast, prepare_inputs, prepare_model
from prunebench.data.base import Batch, to_device
from prunebench.registry import Registry

TASKS: Registry[type[Task]] = Registry("task")


class Task:
    name = "task"
    metric = "metric"  # the headline metric's name, e.g. 'top1' or 'ppl'
    higher_is_better = True

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model(prepare_inputs(inputs))

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
        prepare_model(model, device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct1 = torch.zeros((), dtype=torch.long, device=device)
        correct5 = torch.zeros((), dtype=torch.long, device=device)
        count = 0
        for batch in batches:
            inputs, targets = to_device(batch, device)
            with autocast(device):
                logits = self.forward(model, inputs)
            logits = logits.float()
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


def lm_logits(output) -> torch.Tensor:
    """Logits from a plain module's tensor or a Hugging Face model's output object."""
    return output.logits if hasattr(output, "logits") else output


class CausalLM(Task):
    """Next-token prediction. Batches are (input_ids, target_ids), both (B, T): the targets are
    the inputs shifted by one token (data/text.py); -100 marks a position that is not scored."""

    name = "causal_lm"
    metric = "ppl"
    higher_is_better = False
    ignore_index = -100

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return lm_logits(model(inputs))

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        logits = self.forward(model, inputs)
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            targets.reshape(-1),
            ignore_index=self.ignore_index,
        )

    @torch.inference_mode()
    def evaluate(
        self, model: nn.Module, batches: Iterable[Batch], device: torch.device
    ) -> dict[str, float]:
        was_training = model.training
        model.eval()
        nll_sum = torch.zeros((), dtype=torch.float64, device=device)
        tokens = torch.zeros((), dtype=torch.long, device=device)
        for batch in batches:
            inputs, targets = to_device(batch, device)
            with autocast(device):
                logits = self.forward(model, inputs)
            flat = targets.reshape(-1)
            nll_sum += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                flat,
                ignore_index=self.ignore_index,
                reduction="sum",
            ).double()
            tokens += (flat != self.ignore_index).sum()
        model.train(was_training)
        count = int(tokens)
        if count == 0:
            raise ValueError("cannot evaluate on an empty split")
        loss = float(nll_sum) / count
        return {"loss": loss, "ppl": math.exp(loss)}


TASKS.register("causal_lm", CausalLM)


def make_task(name: str) -> Task:
    return TASKS.get(name)()
