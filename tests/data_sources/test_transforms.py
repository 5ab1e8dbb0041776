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
    random_crop_flip,
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


def test_random_crop_flip_is_a_window_of_the_zero_padded_image_maybe_mirrored():
    x = images(128)
    torch.manual_seed(1)
    out = random_crop_flip(x, padding=4)
    padded = TF.pad(x, [4])  # torchvision's RandomCrop(32, padding=4) pads with zeros
    offsets, flips = set(), 0
    for i in range(len(x)):
        matches = [
            (dy, dx, mirrored)
            for dy in range(9)
            for dx in range(9)
            for mirrored in (False, True)
            if torch.equal(
                out[i],
                padded[i, :, dy : dy + 32, dx : dx + 32].flip(-1)
                if mirrored
                else padded[i, :, dy : dy + 32, dx : dx + 32],
            )
        ]
        assert matches, f"image {i} is not a (mirrored) 32x32 window of its padded copy"
        offsets.add(matches[0][:2])
        flips += matches[0][2]
    assert len(offsets) > 40  # offsets vary per image (81 possible)
    assert 40 < flips < 88  # about half are mirrored
    torch.manual_seed(1)
    assert torch.equal(random_crop_flip(x, padding=4), out)  # seeded


def test_no_padding_and_no_flip_is_the_identity():
    x = images(8)
    assert torch.equal(random_crop_flip(x, padding=0, flip_p=0.0), x)
    assert torch.equal(random_crop_flip(x, padding=0, flip_p=1.0), x.flip(-1))


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


def test_crop_and_flip_draws_come_from_the_cpu_rng_in_a_fixed_order():
    """Offsets y, x, then flips, all from torch's CPU RNG: a seeded step augments alike on every
    device (the draws reach a GPU in one pinned copy), and CPU rows stay what they were."""
    x = images(32)
    torch.manual_seed(3)
    out = random_crop_flip(x, padding=4)
    torch.manual_seed(3)
    dy, dx, flip = torch.randint(0, 9, (32,)), torch.randint(0, 9, (32,)), torch.rand(32) < 0.5
    padded = TF.pad(x, [4])
    for i in range(32):
        source = padded[i].flip(-1) if flip[i] else padded[i]  # the mirror, cut at (dy, dx)
        assert torch.equal(out[i], source[:, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32])
