"""Seeds derived from content keys, so a step's randomness does not depend on what ran before."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_from_key(key: str) -> int:
    """A 31-bit seed from a hexadecimal key."""
    return int(key[:8], 16) & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
