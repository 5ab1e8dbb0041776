"""Batched crop/flip/resize/normalize agree with torchvision's per-sample transforms."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from prunebench.data.memory import TensorLoader
from prunebench.data.transforms import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    ImageBatchTransform,
    random_crop,
    random_flip,
)


def images(n=16, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def test_normalize_matches_torchvision_per_sample():
    x = images(4)
    ours = ImageBatchTransform(CIFAR10_MEAN, CIFAR10_STD)(x)
    reference = T.Compose([T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    for i in range(4):
        pil = Image.fromarray(x[i].permute(1, 2, 0).numpy())
        torch.testing.assert_close(ours[i], reference(pil), atol=1e-6, rtol=1e-6)


def test_random_crop_is_a_window_of_the_zero_padded_image():
    x = images(64)
    torch.manual_seed(1)
    out = random_crop(x, padding=4)
    padded = TF.pad(x, [4])  # torchvision's RandomCrop(32, padding=4) pads with zeros
    offsets = set()
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(out[i], padded[i, :, dy : dy + 32, dx : dx + 32])
        ]
        assert matches, f"image {i} is not a 32x32 window of its padded copy"
        offsets.add(matches[0])
    assert len(offsets) > 20  # offsets vary per image (81 possible)


def test_random_flip_flips_about_half_and_is_seeded():
    x = images(200)
    torch.manual_seed(3)
    out = random_flip(x)
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    assert all(f or torch.equal(out[i], x[i]) for i, f in enumerate(flipped))
    assert 70 < sum(flipped) < 130
    torch.manual_seed(3)
    assert torch.equal(random_flip(x), out)


def test_resize_matches_torchvision_tensor_resize():
    x = images(3)
    ours = ImageBatchTransform((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), size=64)(x)
    reference = TF.resize(x.float() / 255, [64, 64], antialias=True)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    assert ours.shape == (3, 3, 64, 64)


def test_augmented_loader_is_deterministic_under_a_seed():
    x, y = images(50), torch.arange(50)
    loader = TensorLoader(
        x, y, 16, shuffle=True, transform=ImageBatchTransform(CIFAR10_MEAN, CIFAR10_STD, True)
    )
    torch.manual_seed(7)
    first = [(a.clone(), b.clone()) for a, b in loader]
    torch.manual_seed(7)
    second = list(loader)
    assert all(
        torch.equal(a, c) and torch.equal(b, d)
        for (a, b), (c, d) in zip(first, second, strict=True)
    )
    assert sorted(torch.cat([b for _, b in first]).tolist()) == list(range(50))
    assert first[0][0].dtype == torch.float32
    assert np.isclose(float(first[0][0].mean()), 0.0, atol=0.3)
