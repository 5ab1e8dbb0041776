"""Device choice: 'auto' takes CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from prunebench.errors import PrunebenchError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PrunebenchError("device 'cuda' was asked for but no GPU is visible; use --device cpu")
    return torch.device(name)
