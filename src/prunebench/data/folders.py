"""Images in class folders (`data.name=image_folder`): any number of classes, any image size.

`data.root` holds `train/` and `test/` (and optionally `val/`), each with one sub-folder of
images per class, or the class folders directly, from which test (`options.test_fraction`)
and validation splits are carved, stratified and seeded (`data.split_seed`). Without `val/` the
validation split is carved from `train/` (`data.val_fraction`). Images are resized to
`data.image_size` (default: the shorter side of the first training image) and centre-cropped
square; the rest (memory or streaming, normalisation, augmentation) is data/images.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from prunebench.data.base import DataBundle
from prunebench.data.images import DecodedImages, carve, image_bundle, native_size
from prunebench.data.info import DatasetSpec
from prunebench.data.options import OPTION_DEFAULTS, dataset_options
from prunebench.errors import ConfigError

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

DEFAULTS = OPTION_DEFAULTS["image_folder"]
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def scan(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files (sorted). A class folder without images is refused: it
    would silently drop a class the user meant to have."""
    out = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in sub.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
        if not files:
            raise ConfigError(
                f"data.root: class folder '{sub}' holds no images ({', '.join(sorted(EXTENSIONS))}"
                "); add its images, or remove the folder to leave the class out"
            )
        out[sub.name] = files
    return out


def read_layout(root: Path) -> dict[str, dict[str, list[Path]]]:
    """Split name ('train', 'test', 'val', or 'all' for one folder) -> class -> files."""
    if not root.is_dir():
        raise ConfigError(f"data.root: '{root}' is not a directory of class folders")
    if not (root / "train").is_dir():
        return {"all": scan(root)}
    if not (root / "test").is_dir():
        raise ConfigError(
            f"data.root: '{root}' has train/ but no test/; add test/ (same class folders) or "
            "put the class folders directly under data.root to carve the splits"
        )
    parts = {"train": scan(root / "train"), "test": scan(root / "test")}
    if (root / "val").is_dir():
        parts["val"] = scan(root / "val")
    return parts


def build_image_folder(cfg: DataConfig, device: torch.device) -> DataBundle:
    opts = dataset_options("image_folder", cfg.options, DEFAULTS)
    root = cfg.root
    if root is None:
        raise ConfigError("data.root must point at a folder of class folders")
    parts = read_layout(root)
    main = "all" if "all" in parts else "train"
    classes = sorted(parts[main])
    where = f"data.root: '{root / main if main == 'train' else root}'"
    if len(classes) < 2:
        found = f" ('{classes[0]}')" if classes else ""
        raise ConfigError(
            f"{where} holds {len(classes)} class folder of images{found}; classification "
            "needs at least two"
        )
    for name, part in parts.items():
        extra = sorted(set(part) - set(classes))
        if extra:
            raise ConfigError(
                f"data.root: {name}/ has class folder '{extra[0]}' that {main}/ lacks"
            )
        missing = sorted(set(classes) - set(part))
        if missing:  # its metrics would silently leave the class out
            raise ConfigError(
                f"data.root: {name}/ lacks class folder '{missing[0]}' that {main}/ has; every "
                "split needs images of every class"
            )
    items: list[Path] = []
    labels: list[int] = []
    positions: dict[str, np.ndarray] = {}
    for name, part in parts.items():
        start = len(items)
        for label, cls in enumerate(classes):
            files = part.get(cls, [])
            items += files
            labels += [label] * len(files)
        positions[name] = np.arange(start, len(items))
    label_array = np.asarray(labels, dtype=np.int64)
    if main == "all":
        index = carve(label_array, cfg, opts["test_fraction"])
    else:
        train = positions["train"]
        index = {"train": train, "test": positions["test"]}
        if "val" in positions:
            index["val"] = positions["val"]
        else:
            carved = carve(label_array[train], cfg, None)
            index["train"], index["val"] = train[carved["train"]], train[carved["val"]]
    for name in ("train", "val", "test"):
        if len(index[name]) == 0:
            raise ConfigError(f"data.root: the {name} split of '{root}' holds no images")
    size = cfg.image_size or native_size(items[int(index["train"][0])])
    pool = DecodedImages(items, label_array, size, int(opts["channels"]))
    return image_bundle(pool, index, len(classes), cfg, opts, device)


SPEC = DatasetSpec(
    build=build_image_folder,
    task="classification",
    needs_root=True,
    description="class folders of images: data.root/{train,test[,val]}/CLASS/ or data.root/CLASS/",
)
