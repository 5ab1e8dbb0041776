"""ImageNet as train/ and val/ image folders, streamed through a DataLoader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from prunebench.config.loading import load_run_config
from prunebench.data import DATASETS
from prunebench.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from prunebench.errors import ConfigError

CLASSES = ("n01440764", "n01443537", "n01484850")


def write_folders(root, train_per_class=6, val_per_class=2):
    rng = np.random.default_rng(0)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for c in CLASSES:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(n):
                size = (int(rng.integers(40, 60)), int(rng.integers(40, 60)))
                pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{c}_{i}.JPEG", format="JPEG")


def config(root, *extra):
    return load_run_config(
        None,
        ["device=cpu", "data.name=imagenet", f"data.root={root}", "data.image_size=32",
         "data.val_fraction=0.34", "data.batch_size=4", "data.eval_batch_size=4", *extra],
    ).data  # fmt: skip


def test_image_folders_load_with_eval_transform_of_the_paper(tmp_path):
    write_folders(tmp_path)
    cfg = config(tmp_path, "data.num_workers=1")
    data = DATASETS.get("imagenet").build(cfg, torch.device("cpu"))
    assert data.info.num_classes == 3 and data.info.image_size == 32
    assert data.sizes == {"train": 11, "val": 7, "test": 6}

    x, y = next(iter(data.test))  # val/ folder, sorted: class 0 first
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 0, 1, 1]
    reference = T.Compose(
        [T.Resize(37), T.CenterCrop(32), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )  # 37 = round(32 * 256 / 224): the 256 -> 224 ratio of appendix F.4.3
    first = sorted((tmp_path / "val" / CLASSES[0]).iterdir())[0]
    torch.testing.assert_close(x[0], reference(Image.open(first).convert("RGB")))

    torch.manual_seed(0)
    xb, yb = next(iter(data.train))
    assert xb.shape == (4, 3, 32, 32) and yb.dtype == torch.long


def test_missing_val_folder_is_a_config_error(tmp_path):
    write_folders(tmp_path)
    for path in (tmp_path / "val").rglob("*"):
        if path.is_file():
            path.unlink()
    for path in sorted((tmp_path / "val").iterdir()):
        path.rmdir()
    (tmp_path / "val").rmdir()
    with pytest.raises(ConfigError, match=r"data\.root: '.*val' is missing"):
        DATASETS.get("imagenet").build(config(tmp_path), torch.device("cpu"))
