"""TinyStories from local files, read through Hugging Face `datasets`, tokenized locally.

`data.root` may be
  * one file: `.txt` (stories separated by `<|endoftext|>` lines, as TinyStories-train.txt),
    `.json` / `.jsonl` / `.parquet` / `.csv` (a `text` column);
  * a directory written by `datasets`' `save_to_disk` (a DatasetDict or a Dataset);
  * a directory of such files, e.g. a snapshot of the TinyStories repository: files whose names
    contain `train` are the training split, `valid`/`validation`/`test` the test split
    (`data.options.train_files` / `test_files` take glob patterns to choose explicitly).
`data.tokenizer` is a local GPT-Neo tokenizer directory (e.g. the TinyStories-33M model folder).
The validation split is carved from the training stories (seeded); the source's own validation
split is the reported test split. `train_stories` / `eval_stories` cap the story counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from prunebench.data.base import DataBundle
from prunebench.data.info import DatasetSpec
from prunebench.data.options import OPTION_DEFAULTS, dataset_options
from prunebench.data.text import lm_bundle
from prunebench.errors import ConfigError

if TYPE_CHECKING:
    from prunebench.config.schema import DataConfig

SEPARATOR = "<|endoftext|>"
DEFAULTS = OPTION_DEFAULTS["tinystories"]
# datasets' builder name per extension, in order of preference when a folder holds several.
BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json", ".json": "json",
            ".csv": "csv", ".txt": "text"}  # fmt: skip
TEST_WORDS = ("valid", "validation", "test")


def read_txt(paths: list[Path]) -> list[str]:
    """Stories separated by `<|endoftext|>` (TinyStories' text files); blank-free, stripped."""
    stories: list[str] = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        stories.extend(s.strip() for s in text.split(SEPARATOR) if s.strip())
    return stories


def read_files(paths: list[Path], field: str, cache_dir: str | None) -> list[str]:
    """Stories from files of one format: text files directly, the rest through `datasets`."""
    builder = BUILDERS[paths[0].suffix]
    if builder == "text":
        return read_txt(paths)
    import datasets

    datasets.disable_progress_bars()
    ds = datasets.load_dataset(
        builder, data_files=[str(p) for p in paths], split="train", cache_dir=cache_dir
    )
    return column(ds, field, paths[0])


def column(ds: Any, field: str, source: Path) -> list[str]:
    if field not in ds.column_names:
        raise ConfigError(
            f"data.options.text_field: '{source}' has no column '{field}' "
            f"(columns: {', '.join(ds.column_names)})"
        )
    return list(ds[field])


def _is_test(path: Path) -> bool:
    return any(word in path.name.lower() for word in TEST_WORDS)


def pick_files(root: Path, pattern: str | None, want_test: bool) -> list[Path]:
    """Files of the split, all of one format (the preferred one when a folder has several)."""
    if pattern is not None:
        found = sorted(p for p in root.glob(pattern) if p.is_file())
        if not found:
            raise ConfigError(f"data.options: no file under '{root}' matches '{pattern}'")
        return found
    candidates = [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in BUILDERS and not p.name.startswith(".")
    ]
    if want_test:
        candidates = [p for p in candidates if _is_test(p)]
    else:
        candidates = [p for p in candidates if "train" in p.name.lower() and not _is_test(p)]
    for suffix in BUILDERS:
        chosen = [p for p in candidates if p.suffix == suffix]
        if len(chosen) > 1 and suffix not in (".parquet", ".arrow"):
            raise ConfigError(
                f"data.root: several candidate files ({chosen[0].name}, {chosen[1].name}); "
                "choose with data.options.train_files / test_files (glob patterns)"
            )
        if chosen:
            return chosen
    return []


def load_splits(root: Path, opts: dict[str, Any]) -> tuple[list[str], list[str] | None]:
    """(training stories, test stories or None when the source has a single split)."""
    field, cache = opts["text_field"], opts["cache_dir"]
    if root.is_file():
        if root.suffix not in BUILDERS:
            raise ConfigError(
                f"data.root: '{root}' is not a .txt/.json/.jsonl/.parquet/.csv/.arrow file"
            )
        return read_files([root], field, cache), None
    if (root / "dataset_dict.json").exists() or (root / "state.json").exists():
        return load_saved(root, field)
    train, test = split_files(root, opts)
    return read_files(train, field, cache), (read_files(test, field, cache) if test else None)


def split_files(root: Path, opts: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(training files, test files) of a folder: `options.train_files` / `test_files` patterns,
    else names with 'train' and with 'valid'/'validation'/'test'; no training file is an error."""
    train = pick_files(root, opts["train_files"], want_test=False)
    if not train:
        raise ConfigError(
            f"data.root: no training file (name containing 'train', one of "
            f"{', '.join(BUILDERS)}) under '{root}'"
        )
    return train, pick_files(root, opts["test_files"], want_test=True)


def load_saved(root: Path, field: str) -> tuple[list[str], list[str] | None]:
    import datasets

    saved = datasets.load_from_disk(str(root))
    if isinstance(saved, datasets.Dataset):
        return column(saved, field, root), None
    if "train" not in saved:
        raise ConfigError(f"data.root: '{root}' has no 'train' split ({', '.join(saved)})")
    test_name = next((name for name in ("validation", "valid", "test") if name in saved), None)
    test = column(saved[test_name], field, root) if test_name else None
    return column(saved["train"], field, root), test


def split(
    train: list[str], test: list[str] | None, cfg: DataConfig, opts: dict[str, Any]
) -> dict[str, list[str]]:
    """Seeded val (and, for single-split sources, test) carved off the training stories."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.split_seed))
    cap = opts["eval_stories"]
    n_eval = max(1, round(cfg.val_fraction * len(train)))
    n_eval = min(n_eval, cap) if cap is not None else n_eval
    n_test = 0 if test is not None else n_eval
    if n_eval + n_test >= len(train):
        raise ConfigError(f"data.root: {len(train)} training stories are too few to split")
    picked = [train[i] for i in order.tolist()]
    val, rest = picked[:n_eval], picked[n_eval:]
    if test is None:
        test, rest = rest[:n_test], rest[n_test:]
    elif cap is not None:
        test = test[:cap]
    if opts["train_stories"] is not None:
        rest = rest[: int(opts["train_stories"])]
    return {"train": rest, "val": val, "test": test}


def load_tokenizer(path: Path | None):
    if path is None:
        raise ConfigError(
            "data.tokenizer: a text dataset needs a local tokenizer directory "
            "(e.g. the TinyStories-33M model folder with tokenizer.json / vocab.json)"
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())  # transformers' messages span several lines
        raise ConfigError(
            f"data.tokenizer: cannot load a tokenizer from '{path}': {reason}"
        ) from None


def build_tinystories(cfg: DataConfig, device: torch.device) -> DataBundle:
    opts = dataset_options("tinystories", cfg.options, DEFAULTS)
    tokenizer = load_tokenizer(cfg.tokenizer)  # first: fail before reading gigabytes of text
    if cfg.root is None:
        raise ConfigError("data.root must point at local TinyStories files or a dataset folder")
    train, test = load_splits(cfg.root, opts)
    splits = split(train, test, cfg, opts)
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"data.tokenizer: '{cfg.tokenizer}' defines no end-of-text token")

    def encode(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]

    return lm_bundle(splits, encode, tokenizer.eos_token_id, len(tokenizer), cfg, device, tokenizer)


SPEC = DatasetSpec(
    build=build_tinystories,
    task="causal_lm",
    needs_root=True,
    description="TinyStories from local files / a saved dataset, local GPT-Neo tokenizer",
)
