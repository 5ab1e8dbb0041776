"""Batched image transforms on device tensors: the fast path for datasets kept in memory.

A batch of uint8 images (N, C, H, W) is cropped, flipped, resized and normalized with a few
tensor operations instead of N calls into PIL. The random draws (crop offsets, flips) come from
torch's global CPU RNG and are then moved to the device, so a seeded step sees the same
augmentation on every device (as TensorLoader does for the order).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

# Per-channel statistics (paper appendix F.2 refers to "values in the code repository"; these are
# the commonly used training-set means / standard deviations of each dataset).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def random_crop(images: torch.Tensor, padding: int) -> torch.Tensor:
    """torchvision's RandomCrop(size=H, padding) for a whole batch: zero-pad, then cut each
    image at its own random offset in [0, 2*padding]."""
    if padding == 0:
        return images
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    device = images.device
    dy = torch.randint(0, 2 * padding + 1, (n,)).to(device, non_blocking=True)
    dx = torch.randint(0, 2 * padding + 1, (n,)).to(device, non_blocking=True)
    rows = (dy[:, None] + torch.arange(h, device=device)).view(n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols]


def random_flip(images: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """Horizontal flip of each image with probability p."""
    flip = (torch.rand(len(images)) < p).to(images.device, non_blocking=True)
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of float images (as torchvision's Resize on tensors, with antialiasing)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )


class ImageBatchTransform:
    """uint8 (N, C, H, W) -> normalized float32, with optional crop/flip augmentation and resize.

    Order: crop and flip at the native resolution (cheap, and what the paper's CIFAR pipeline
    does), then convert to [0, 1], resize when `size` differs, normalize.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        padding: int = 4,
        size: int | None = None,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.augment = augment
        self.padding = padding
        self.size = size

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.augment:
            images = random_flip(random_crop(images, self.padding))
        x = images.float().div_(255.0)
        if self.size is not None:
            x = resize(x, self.size)
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        return x.sub_(self.mean).div_(self.std)
