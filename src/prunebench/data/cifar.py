"""CIFAR-10 / CIFAR-100 in torchvision's on-disk format, kept in memory as uint8 on the device.

`data.root` is the directory that holds `cifar-10-batches-py/` (or `cifar-100-python/`), as for
torchvision, or that directory itself. Nothing is downloaded unless `data.download` is true.
The validation split is carved (stratified, `data.split_seed`) from the training batches; the
test batch is only reported. Augmentation (paper appendix F.2: random crop 32 with padding 4,
horizontal flip) and normalization run on whole batches (data/transforms.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prunebench.data.base import DataBundle
from prunebench.data.info import DataInfo, DatasetSpec
from prunebench.data.memory import TensorLoader
from prunebench.data.options import dataset_options
from prunebench.data.safe_pickle import load_data_pickle
from prunebench.data.splits import stratified_val
from prunebench.data.transforms import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    ImageBatchTransform,
)
from prunebench.errors import ConfigError, PrunebenchError

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig


@dataclass(frozen=True)
class CifarFormat:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    torchvision_class: str  # for the download URL and checksum


CIFAR10 = CifarFormat(
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    label_key="labels",
    num_classes=10,
    mean=CIFAR10_MEAN,
    std=CIFAR10_STD,
    torchvision_class="CIFAR10",
)
CIFAR100 = CifarFormat(
    folder="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    label_key="fine_labels",
    num_classes=100,
    mean=CIFAR100_MEAN,
    std=CIFAR100_STD,
    torchvision_class="CIFAR100",
)


def _text_keys(batch: dict[Any, Any]) -> dict[str, Any]:
    """Python 2 files give str keys, files re-pickled by Python 3 give bytes keys."""
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}


def read_batches(directory: Path, files: tuple[str, ...], label_key: str):
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from CIFAR batch files."""
    images, labels = [], []
    for name in files:
        path = directory / name
        if not path.exists():
            raise PrunebenchError(f"CIFAR batch file '{path}' is missing; the copy is incomplete")
        batch = _text_keys(load_data_pickle(path))
        if "data" not in batch or label_key not in batch:
            raise PrunebenchError(f"'{path}' lacks 'data' or '{label_key}'")
        data = np.asarray(batch["data"], dtype=np.uint8)
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def locate(root: Path | None, fmt: CifarFormat, download: bool) -> Path:
    """The batch directory under `root` (or `root` itself); download first only if asked."""
    root = root if root is not None else Path("data")
    for candidate in (root / fmt.folder, root):
        if (candidate / fmt.test_files[0]).exists():
            return candidate
    if download:
        import torchvision.datasets as tvd
        from torchvision.datasets.utils import download_and_extract_archive

        cls = getattr(tvd, fmt.torchvision_class)
        download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)
        return root / fmt.folder
    raise ConfigError(
        f"data.root: no '{fmt.folder}' directory under '{root}'; point data.root at the directory "
        "that holds it, or set data.download=true on a machine with network"
    )


def build_cifar(fmt: CifarFormat, name: str, cfg: DataConfig, device: torch.device) -> DataBundle:
    dataset_options(name, cfg.options, {})
    directory = locate(cfg.root, fmt, cfg.download)
    train_x, train_y = read_batches(directory, fmt.train_files, fmt.label_key)
    test_x, test_y = read_batches(directory, fmt.test_files, fmt.label_key)
    train_idx, val_idx = stratified_val(train_y.numpy(), cfg.val_fraction, cfg.split_seed)

    size = cfg.image_size if cfg.image_size not in (None, 32) else None
    plain = ImageBatchTransform(fmt.mean, fmt.std, augment=False, size=size)
    augmented = ImageBatchTransform(fmt.mean, fmt.std, augment=cfg.augment, size=size)

    def loader(x, y, batch_size, shuffle, transform) -> TensorLoader:
        return TensorLoader(
            x.to(device), y.to(device), batch_size, shuffle=shuffle, transform=transform
        )

    train_idx, val_idx = torch.as_tensor(train_idx), torch.as_tensor(val_idx)
    tx, ty = train_x[train_idx], train_y[train_idx]
    vx, vy = train_x[val_idx], train_y[val_idx]
    return DataBundle(
        info=DataInfo(
            task="classification",
            num_classes=fmt.num_classes,
            in_channels=3,
            image_size=cfg.image_size or 32,
        ),
        train=loader(tx, ty, cfg.batch_size, True, augmented),
        val=loader(vx, vy, cfg.eval_batch_size, False, plain),
        test=loader(test_x, test_y, cfg.eval_batch_size, False, plain),
        calibration=loader(tx, ty, cfg.batch_size, True, plain),
        sizes={"train": len(tx), "val": len(vx), "test": len(test_x)},
    )


CIFAR10_SPEC = DatasetSpec(
    build=lambda cfg, device: build_cifar(CIFAR10, "cifar10", cfg, device),
    task="classification",
    needs_root=True,
    description="CIFAR-10 in torchvision's format under data.root (50k train, 10k test)",
)
CIFAR100_SPEC = DatasetSpec(
    build=lambda cfg, device: build_cifar(CIFAR100, "cifar100", cfg, device),
    task="classification",
    needs_root=True,
    description="CIFAR-100 in torchvision's format under data.root (50k train, 10k test)",
)
