"""A Hugging Face dataset on disk (`data.name=hf_dataset`): labelled images or text.

`data.root` is a `save_to_disk` folder (a DatasetDict with `train` and `test` / `validation`, or
one Dataset), one .parquet/.csv/.json/.jsonl/.arrow file, or a folder of such files (names with
`train` / `test` / `valid`, or `options.train_files` / `test_files` glob patterns). Columns are
named in the options: `image_column` + `label_column` (default `image` / `label`) make an image
classification dataset (data/images.py: kept in memory when it fits, normalised with the
training split's statistics); `text_column` makes a causal-LM corpus tokenized with the local
tokenizer in `data.tokenizer` (packed as for TinyStories). Splits the source lacks are carved,
seeded (`data.split_seed`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prunebench.data.base import DataBundle
from prunebench.data.images import (
    DecodedImages,
    carve,
    count_classes,
    image_bundle,
    native_size,
)
from prunebench.data.info import DatasetSpec
from prunebench.data.options import OPTION_DEFAULTS, dataset_options
from prunebench.data.text import lm_bundle
from prunebench.data.tinystories import BUILDERS, load_tokenizer, split, split_files
from prunebench.errors import ConfigError

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

DEFAULTS = OPTION_DEFAULTS["hf_dataset"]
TEST_SPLITS = ("test", "validation", "valid")


def _read(paths: list[Path], cache_dir: str | None):
    import datasets

    datasets.disable_progress_bars()
    builder = BUILDERS[paths[0].suffix]
    return datasets.load_dataset(
        builder, data_files=[str(p) for p in paths], split="train", cache_dir=cache_dir
    )


def load_splits(root: Path, opts: dict[str, Any]) -> dict[str, Any]:
    """{'train': Dataset, 'test': Dataset (when the source has one)}."""
    import datasets

    if (root / "dataset_dict.json").exists() or (root / "state.json").exists():
        saved = datasets.load_from_disk(str(root))
        if isinstance(saved, datasets.Dataset):
            return {"train": saved}
        if "train" not in saved:
            raise ConfigError(f"data.root: '{root}' has no 'train' split ({', '.join(saved)})")
        test = next((n for n in TEST_SPLITS if n in saved), None)
        return {"train": saved["train"], **({"test": saved[test]} if test else {})}
    if root.is_file():
        if root.suffix not in BUILDERS:
            raise ConfigError(f"data.root: '{root}' is not one of {', '.join(BUILDERS)}")
        return {"train": _read([root], opts["cache_dir"])}
    train, test = split_files(root, opts)
    out = {"train": _read(train, opts["cache_dir"])}
    if test:
        out["test"] = _read(test, opts["cache_dir"])
    return out


def check_columns(parts: dict[str, Any], columns: list[str], root: Path) -> None:
    for name, ds in parts.items():
        for column in columns:
            if column not in ds.column_names:
                raise ConfigError(
                    f"data.options: the {name} split of '{root}' has no column '{column}' "
                    f"(columns: {', '.join(ds.column_names)}); name it with "
                    "data.options.image_column / label_column / text_column"
                )


def build_hf_dataset(cfg: DataConfig, device: torch.device) -> DataBundle:
    opts = dataset_options("hf_dataset", cfg.options, DEFAULTS)
    if cfg.root is None:
        raise ConfigError("data.root must point at a save_to_disk folder or data files")
    if opts["text_column"] is not None:
        tokenizer = load_tokenizer(cfg.tokenizer)  # first: fail before reading the corpus
        parts = load_splits(cfg.root, opts)
        check_columns(parts, [opts["text_column"]], cfg.root)
        texts = {name: list(ds[opts["text_column"]]) for name, ds in parts.items()}
        caps = {"eval_stories": None, "train_stories": None}
        splits = split(texts["train"], texts.get("test"), cfg, caps)
        if tokenizer.eos_token_id is None:
            raise ConfigError(f"data.tokenizer: '{cfg.tokenizer}' defines no end-of-text token")

        def encode(batch: list[str]) -> list[list[int]]:
            return tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]

        return lm_bundle(
            splits, encode, tokenizer.eos_token_id, len(tokenizer), cfg, device, tokenizer
        )
    return image_data(cfg, opts, device)


def image_data(cfg: DataConfig, opts: dict[str, Any], device: torch.device) -> DataBundle:
    image_col, label_col = opts["image_column"], opts["label_column"]
    parts = load_splits(cfg.root, opts)
    check_columns(parts, [image_col, label_col], cfg.root)
    raw = {name: list(ds[label_col]) for name, ds in parts.items()}
    names = sorted({v for values in raw.values() for v in values}, key=str)
    numeric = all(isinstance(v, (int, np.integer)) for v in names)
    to_label = {v: int(v) for v in names} if numeric else {v: i for i, v in enumerate(names)}
    items: list[tuple[Any, int]] = []
    labels: list[int] = []
    positions = {}
    for name, ds in parts.items():
        start = len(items)
        items += [(ds, i) for i in range(len(ds))]
        labels += [to_label[v] for v in raw[name]]
        positions[name] = np.arange(start, len(items))
    label_array = np.asarray(labels, dtype=np.int64)
    num_classes = count_classes(label_array, f"data.root: '{cfg.root}'")
    if "test" in positions:
        train = positions["train"]
        carved = carve(label_array[train], cfg, None)
        index = {"train": train[carved["train"]], "val": train[carved["val"]]}
        index["test"] = positions["test"]
    else:
        index = carve(label_array, cfg, opts["test_fraction"])

    def fetch(item: tuple[Any, int]) -> Any:
        ds, row = item
        return ds[row][image_col]

    size = cfg.image_size or native_size(fetch(items[int(index["train"][0])]))
    pool = DecodedImages(items, label_array, size, int(opts["channels"]), fetch)
    return image_bundle(pool, index, num_classes, cfg, opts, device)


SPEC = DatasetSpec(
    build=build_hf_dataset,
    task=None,
    needs_root=True,
    description="a Hugging Face dataset on disk: image + label columns, or a text column",
)
