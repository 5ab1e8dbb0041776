"""Unstructured masks kept as dense weights with masked gradients (no per-forward hooks).

Pruned weights are zeroed once, their gradients are zeroed before each optimizer step and the
weights are re-zeroed after it, so they stay exactly zero under momentum, weight decay or AdamW.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from prunebench.errors import PrunebenchError


class MaskSet:
    """Boolean keep-masks for named parameters of one model."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        params = dict(model.named_parameters())
        self.names = list(names)
        self.params = [params[n] for n in self.names]
        self.keep = {
            n: torch.ones_like(p, dtype=torch.bool)
            for n, p in zip(names, self.params, strict=False)
        }
        self._factors = [torch.ones_like(p) for p in self.params]

    def set(self, keep: dict[str, torch.Tensor]) -> None:
        for i, name in enumerate(self.names):
            mask = keep[name].to(device=self.params[i].device, dtype=torch.bool)
            if mask.shape != self.params[i].shape:
                raise PrunebenchError(f"mask for '{name}' has shape {tuple(mask.shape)}")
            self.keep[name] = mask
            self._factors[i] = mask.to(self.params[i].dtype)

    @torch.no_grad()
    def apply(self) -> None:
        """Zero the pruned weights (call after every optimizer step)."""
        torch._foreach_mul_(self.params, self._factors)

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Zero the pruned weights' gradients (call before every optimizer step)."""
        pairs = [
            (p.grad, f)
            for p, f in zip(self.params, self._factors, strict=False)
            if p.grad is not None
        ]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [f for _, f in pairs])

    def pruned_count(self) -> int:
        return sum(int((~m).sum()) for m in self.keep.values())

    def state(self) -> dict[str, torch.Tensor]:
        """The keep-masks by parameter name, on the CPU."""
        return {n: m.cpu() for n, m in self.keep.items()}

    def load_state(self, keep: dict[str, torch.Tensor]) -> None:
        missing = [n for n in self.names if n not in keep]
        if missing:
            raise PrunebenchError(f"checkpoint lacks the mask of '{missing[0]}'")
        self.set({n: keep[n] for n in self.names})


def count_to_prune(fraction: float, total: int) -> int:
    """Number of weights that a cumulative fraction stands for, rounded half up."""
    return min(total, math.floor(fraction * total + 0.5))


def lowest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask (flat) that drops exactly the k lowest scores; ties go by index, for determinism."""
    keep = torch.ones(scores.numel(), dtype=torch.bool, device=scores.device)
    if k <= 0:
        return keep
    flat = scores.reshape(-1)
    threshold = flat.kthvalue(k).values
    below = flat < threshold
    need = k - int(below.sum())
    ties = (flat == threshold).nonzero().reshape(-1)[:need]
    keep[below] = False
    keep[ties] = False
    return keep


def _guarded(name: str, score: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Scores with already-pruned weights forced lowest, so masks only ever grow."""
    if torch.isnan(score).any():
        raise PrunebenchError(f"the criterion gave NaN scores for '{name}'")
    return torch.where(keep, score.float(), torch.tensor(-math.inf, device=score.device))


def global_masks(
    scores: dict[str, torch.Tensor], current: dict[str, torch.Tensor], fraction: float
) -> dict[str, torch.Tensor]:
    """One ranking over all tensors: prune `fraction` of all weights together."""
    names = list(scores)
    flat = torch.cat([_guarded(n, scores[n], current[n]).reshape(-1) for n in names])
    keep = lowest_k_mask(flat, count_to_prune(fraction, flat.numel()))
    out, start = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = keep[start : start + size].reshape(scores[n].shape)
        start += size
    return out


def layerwise_masks(
    scores: dict[str, torch.Tensor], current: dict[str, torch.Tensor], fraction: float
) -> dict[str, torch.Tensor]:
    """Each tensor ranked on its own: prune `fraction` of every tensor."""
    return {
        n: lowest_k_mask(_guarded(n, s, current[n]), count_to_prune(fraction, s.numel())).reshape(
            s.shape
        )
        for n, s in scores.items()
    }
