"""Tiny files of the user's own formats, made in the tests: class folders of PNGs, NumPy
arrays, Hugging Face datasets on disk, and python builder / dataset modules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def images(n: int, label: int, size: int = 8, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8 images whose colour depends on the label, plus noise."""
    rng = np.random.default_rng(seed * 100 + label)
    base = np.array(COLOURS[label % len(COLOURS)], dtype=np.float64)
    noise = rng.normal(0, 25, size=(n, size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_folder(root: Path, classes: int = 3, per_class: int = 12, size: int = 8, seed=0):
    from PIL import Image

    for label in range(classes):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, array in enumerate(images(per_class, label, size, seed)):
            Image.fromarray(array).save(folder / f"{i}.png")
    return root


def image_folders(root: Path, classes: int = 3, size: int = 8, val: bool = False) -> Path:
    """root/train/CLASS/*.png and root/test/CLASS/*.png (and root/val/)."""
    write_folder(root / "train", classes, 12, size, seed=0)
    write_folder(root / "test", classes, 4, size, seed=1)
    if val:
        write_folder(root / "val", classes, 3, size, seed=2)
    return root


MODEL_FILE = '''
import torch
from torch import nn


class Net(nn.Module):
    """A small CNN whose classifier is a 1x1 convolution (SqueezeNet's layout)."""

    def __init__(self, channels, classes, width):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, groups={groups}), nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.final = nn.Conv2d(width, classes, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.final(self.features(x))).flatten(1)


def build(info, width=8):
    return Net(info.in_channels, info.num_classes, width)


def not_a_module(info):
    return "a string"


class Vectors(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, 16))
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


def mlp(info):
    return Vectors(info.input_shape[0], info.num_classes)
'''

DATASET_FILE = """
import torch
from torch.utils.data import TensorDataset


def make(n=60, features=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return {"train": TensorDataset(x[: n - 20], y[: n - 20]), "test": TensorDataset(x[-20:], y[-20:])}


def tokens(n=40, seq=8, vocab=11):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (n, seq + 1), generator=g)
    return TensorDataset(ids[:30, :-1], ids[:30, 1:]), TensorDataset(ids[30:, :-1], ids[30:, 1:])
"""


def run_own_model(invoke, folder: Path, name: str, source: str, config: str):
    """`prunebench run` in `folder` (the caller's working directory) of the YAML `config`, whose
    model is `python:NAME.py:build` written from `source`; results in `folder/r`."""
    write_module(folder, name, source)
    (folder / "run.yaml").write_text(config)
    return invoke("run", "run.yaml", "-r", "r", "-q")


def write_module(folder: Path, name: str, text: str, groups: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(text).replace("{groups}", str(groups)))
    return path
