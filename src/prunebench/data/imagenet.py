"""ImageNet-1k as `train/` and `val/` image folders (one sub-folder per class) under data.root.

Too large for memory, so it streams through a DataLoader with `data.num_workers` workers and
pinned memory on CUDA. Train: resize, random crop, horizontal flip; eval: resize and centre crop
(paper appendix F.4.3: resized to 256, cropped to 224; `data.image_size` sets the crop, the
resize keeps the 256/224 ratio). The validation split is carved from `train/`; `val/` is the
reported test split, as is usual for ImageNet.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from prunebench.data.base import DataBundle
from prunebench.data.info import DataInfo, DatasetSpec
from prunebench.data.options import dataset_options
from prunebench.data.splits import stratified_val
from prunebench.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from prunebench.errors import ConfigError

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

DEFAULT_SIZE = 224


def image_transforms(size: int, augment: bool):
    from torchvision import transforms as T

    resize = round(size * 256 / 224)
    crop = [T.RandomCrop(size), T.RandomHorizontalFlip()] if augment else [T.CenterCrop(size)]
    return T.Compose(
        [T.Resize(resize), *crop, T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )


def image_folder(path: Path, transform):
    from torchvision.datasets import ImageFolder

    if not path.is_dir():
        raise ConfigError(
            f"data.root: '{path}' is missing; ImageNet needs train/ and val/ folders with one "
            "sub-folder of images per class"
        )
    try:
        return ImageFolder(str(path), transform=transform)
    except (FileNotFoundError, RuntimeError) as exc:  # no class folders / no images
        raise ConfigError(f"data.root: '{path}' holds no class folders of images ({exc})") from None


def build_imagenet(cfg: DataConfig, device: torch.device) -> DataBundle:
    from torch.utils.data import DataLoader, Subset

    dataset_options("imagenet", cfg.options, {})
    if cfg.root is None:
        raise ConfigError("data.root must point at a local ImageNet copy (train/ and val/)")
    size = cfg.image_size or DEFAULT_SIZE
    train_aug = image_folder(cfg.root / "train", image_transforms(size, cfg.augment))
    train_plain = image_folder(cfg.root / "train", image_transforms(size, False))
    test = image_folder(cfg.root / "val", image_transforms(size, False))
    if train_aug.classes != test.classes:
        raise ConfigError(
            f"data.root: the class folders of '{cfg.root / 'train'}' and "
            f"'{cfg.root / 'val'}' differ; both need the same classes"
        )
    labels = np.asarray(train_aug.targets)
    train_idx, val_idx = stratified_val(labels, cfg.val_fraction, cfg.split_seed)

    cuda = device.type == "cuda"

    def loader(dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,  # the sampler's seed comes from torch's global RNG (seeded steps)
            num_workers=cfg.num_workers,
            pin_memory=cuda,
            persistent_workers=cfg.num_workers > 0,
        )

    return DataBundle(
        info=DataInfo(
            task="classification",
            num_classes=len(train_aug.classes),
            in_channels=3,
            image_size=size,
        ),
        train=loader(Subset(train_aug, train_idx.tolist()), cfg.batch_size, True),
        val=loader(Subset(train_plain, val_idx.tolist()), cfg.eval_batch_size, False),
        test=loader(test, cfg.eval_batch_size, False),
        calibration=loader(Subset(train_plain, train_idx.tolist()), cfg.batch_size, True),
        sizes={"train": len(train_idx), "val": len(val_idx), "test": len(test)},
    )


SPEC = DatasetSpec(
    build=build_imagenet,
    task="classification",
    needs_root=True,
    description="ImageNet-1k image folders data.root/train and data.root/val (DataLoader)",
)
