"""Distillation as recovery: fine-tuning against the dense model's softened outputs.

loss = (1 - alpha) * task loss + alpha * T^2 * KL(teacher_T || student_T), where x_T is
softmax(logits / T) over each scored output row (a class vector; every scored token of a
language model) and KL is averaged over those rows (Hinton et al. 2015; T^2 keeps the soft
term's gradients on the scale of the hard one). The teacher is the run's dense model; its
outputs are computed batch by batch under no_grad, next to the student's, and never stored.
Only the training loss changes: validation, patience and the reported metrics stay the task's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from prunebench.config.fit_settings import Distill
from prunebench.data.base import Batch
from prunebench.tasks import Task


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * mean over rows of KL(softmax(teacher / T) || softmax(student / T))."""
    t = temperature
    log_student = F.log_softmax(student.float() / t, dim=-1)
    log_teacher = F.log_softmax(teacher.float() / t, dim=-1)
    kl = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
    return kl * (t * t)


class DistillingTask(Task):
    """`inner`'s task with the distillation loss for training; everything else is `inner`'s
    (data-parallel sums included)."""

    def __init__(self, inner: Task, teacher: nn.Module, settings: Distill) -> None:
        self.inner = inner
        self.teacher = teacher.eval()
        self.alpha = settings.alpha
        self.temperature = settings.temperature
        self.name, self.metric = inner.name, inner.metric
        self.higher_is_better = inner.higher_is_better

    def forward(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return self.inner.forward(model, inputs)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        inputs, targets = batch
        student = self.inner.forward(model, inputs)
        with torch.no_grad():
            teacher = self.inner.forward(self.teacher, inputs).detach()
        hard = self.inner.loss_of(student, targets)
        soft = soft_loss(
            self.inner.scored_rows(student, targets),
            self.inner.scored_rows(teacher, targets),
            self.temperature,
        )
        return (1.0 - self.alpha) * hard + self.alpha * soft

    def loss_of(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.inner.loss_of(outputs, targets)

    def reduce_sums(self, sums: torch.Tensor) -> torch.Tensor:
        return self.inner.reduce_sums(sums)
