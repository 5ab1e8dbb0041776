"""Batched image transforms on device tensors: the fast path for datasets kept in memory.

A batch of uint8 images (N, C, H, W) is cropped, flipped, resized and normalized with a few
tensor operations instead of N calls into PIL. The random draws (crop offsets, flips) come from
torch's global CPU RNG and are then moved to the device in one pinned, non-blocking copy per
batch, so a seeded step sees the same augmentation on every device (as TensorLoader does for
the order) and the GPU never waits on the host.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from prunebench.data.base import host_to_device

# Per-channel statistics (paper appendix F.2 refers to "values in the code repository"; these are
# the commonly used training-set means / standard deviations of each dataset).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def random_crop_flip(images: torch.Tensor, padding: int = 4, flip_p: float = 0.5) -> torch.Tensor:
    """torchvision's RandomCrop(H, padding) then RandomHorizontalFlip(flip_p), for a whole batch.

    Each image is zero-padded and cut at its own random offset in [0, 2*padding], mirrored with
    probability flip_p. The padded batch and its mirror image are stacked and unfolded into a
    (strided, copy-free) view of every window; one advanced-indexing gather picks each image's
    window. Cropping the mirrored copy at column offset d equals mirroring the crop at 2p - d,
    and both offsets are equally likely, so the distribution is torchvision's.
    """
    n, _, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding,) * 4) if padding else images
    both = torch.stack((padded, padded.flip(-1)), dim=1)  # (n, 2, c, h + 2p, w + 2p)
    windows = both.unfold(3, h, 1).unfold(4, w, 1)  # (n, 2, c, 2p + 1, 2p + 1, h, w)
    dy = torch.randint(0, 2 * padding + 1, (n,))
    dx = torch.randint(0, 2 * padding + 1, (n,))
    flip = (torch.rand(n) < flip_p).long()
    dy, dx, flip = host_to_device(torch.stack((dy, dx, flip)), device)  # one copy per batch
    return windows[torch.arange(n, device=device), flip, :, dy, dx]  # (n, c, h, w)


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
        max_value: float = 255.0,
    ) -> None:
        """`max_value`: the pixel value that means 1.0 (255 for uint8, 1 for float images)."""
        mean_t = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
        self.scale = (1.0 / (max_value * std_t)).float()
        self.shift = (-mean_t / std_t).float()
        self.augment = augment
        self.padding = padding
        self.size = size
        self.mean, self.std, self.max_value = list(mean), list(std), float(max_value)

    def describe(self) -> dict[str, object]:
        """The deterministic part (no augmentation), as DataInfo.preprocessing records it."""
        return {
            "kind": "image",
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "max_value": self.max_value,
            "resize": self.size,
        }

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.augment:
            images = random_crop_flip(images, self.padding)
        x = images.to(torch.float32, copy=True)  # never in place on a float dataset
        if self.size is not None:
            x = resize(x, self.size)  # linear in the pixel values: scaling after is the same
        if self.scale.device != x.device:
            self.scale, self.shift = self.scale.to(x.device), self.shift.to(x.device)
        return x.mul_(self.scale).add_(self.shift)  # ((x / max) - mean) / std in two passes
