"""Training images/s: prunebench's in-memory batched augmentation vs torchvision's per-sample
transforms behind a DataLoader, on a CIFAR-sized dataset made up here, with a small model.

Both paths do the same work per image (random crop 32 with padding 4, horizontal flip,
normalization: paper appendix F.2) and feed the same small CNN a training step (forward,
backward, SGD): the headline ratio. The model is deliberately small: it stands in for a GPU,
where the model step is fast and the input pipeline decides the throughput. The pipelines
alone (no model) are measured too. The torchvision baseline is the best of 0 and `cpu_count`
workers (persistent, started outside the timing). The main process runs torch with one thread:
on this shared 2-core machine two intra-op threads spin against the other load (and against
the DataLoader workers) and make every small op tens of times slower. Repetitions are
interleaved and the medians compared, because the machine is shared and noisy.

    python benchmarks/data_pipeline.py        # prints a table, then `data_pipeline: ratio=...`
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).parent / "support"))
from common import report

from prunebench.data.memory import TensorLoader
from prunebench.data.transforms import CIFAR10_MEAN, CIFAR10_STD, ImageBatchTransform

NAME = "data_pipeline"
GOAL = 3.0
N_IMAGES = 50_000  # CIFAR-10's training set size
BATCH = 256
BATCHES_PER_REP = 20
REPS = 5


class UInt8Images(Dataset):
    """What torchvision's CIFAR10 does per sample: a PIL image from the uint8 array, then the
    per-sample transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def small_cnn() -> nn.Module:
    """A 4x4 stride-4 patchify conv (8 channels), global average pool, linear: ~490 parameters.

    (A 3x3 stride-2 conv instead costs ~4.7 ms per 256-image step on one CPU thread, 3.5x the
    patchify conv, because CPU convolution backward is slow for 3 input channels; with it the
    training ratio measured 2.6-2.8 while the data paths alone stayed at ~8.)"""
    return nn.Sequential(
        nn.Conv2d(3, 8, 4, stride=4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def images_per_second(batches, n_batches: int, model=None, optimizer=None) -> float:
    """Images/s over n_batches: a training step per batch, or (model None) the batches alone."""
    loss_fn = nn.CrossEntropyLoss()
    seen, start = 0, time.perf_counter()
    for i, (x, y) in enumerate(batches):
        if i == n_batches:
            break
        if model is not None:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()
        seen += len(y)
    return seen / (time.perf_counter() - start)


def endless(loader):
    while True:
        yield from loader


def main() -> None:
    torch.set_num_threads(1)  # see the module docstring
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images_hwc = rng.integers(0, 256, (N_IMAGES, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, N_IMAGES)
    workers_max = os.cpu_count() or 1

    ours = TensorLoader(
        torch.from_numpy(images_hwc).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(labels),
        BATCH,
        shuffle=True,
        transform=ImageBatchTransform(CIFAR10_MEAN, CIFAR10_STD, augment=True),
    )
    per_sample = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(CIFAR10_MEAN, CIFAR10_STD),
        ]
    )
    dataset = UInt8Images(images_hwc, labels, per_sample)
    baselines = {
        f"torchvision, {w} workers": DataLoader(
            dataset, batch_size=BATCH, shuffle=True, num_workers=w, persistent_workers=w > 0
        )
        for w in sorted({0, workers_max})
    }
    streams = {"prunebench (batched, in memory)": endless(ours)}
    streams.update({name: endless(loader) for name, loader in baselines.items()})
    for stream in streams.values():  # start workers and warm up outside the timing
        next(stream)

    model = small_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    modes = {"train": (model, optimizer), "data only": (None, None)}
    measured = {(mode, name): [] for mode in modes for name in streams}
    for _ in range(REPS):
        for mode, (m, opt) in modes.items():
            for name, stream in streams.items():  # interleaved repetitions
                measured[(mode, name)].append(images_per_second(stream, BATCHES_PER_REP, m, opt))

    medians = {key: statistics.median(values) for key, values in measured.items()}
    ours_name = "prunebench (batched, in memory)"

    def ratio_for(mode: str) -> tuple[float, str]:
        best = max((n for n in streams if n != ours_name), key=lambda n: medians[(mode, n)])
        return medians[(mode, ours_name)] / medians[(mode, best)], best

    ratio, best_baseline = ratio_for("train")
    data_ratio, _ = ratio_for("data only")

    print(f"{'mode':<11}{'pipeline':<34}{'median img/s':>14}{'min':>10}{'max':>10}")
    for (mode, name), values in measured.items():
        print(
            f"{mode:<11}{name:<34}{medians[(mode, name)]:>14.0f}"
            f"{min(values):>10.0f}{max(values):>10.0f}"
        )
    print(f"data only: ratio={data_ratio:.2f}")
    report(
        NAME,
        ratio,
        GOAL,
        "higher",
        "training images/s with the small CNN, ours / best torchvision DataLoader",
        {
            "train_images_per_second_median": {n: medians[("train", n)] for n in streams},
            "data_only_images_per_second_median": {n: medians[("data only", n)] for n in streams},
            "data_only_ratio": data_ratio,
            "all_repetitions": {f"{mode} | {name}": v for (mode, name), v in measured.items()},
            "baseline": best_baseline,
            "batch_size": BATCH,
            "batches_per_repetition": BATCHES_PER_REP,
            "repetitions": REPS,
            "dataset": f"{N_IMAGES} random uint8 32x32x3 images (CIFAR-sized), 10 classes",
            "transforms": "random crop 32 pad 4, horizontal flip, normalize",
            "model": "conv4x4(3->8, stride 4) + ReLU + global avg pool + linear (SGD step)",
        },
    )


if __name__ == "__main__":
    main()
