"""Facts about a dataset that model builders need, and how a dataset is declared.

Light on purpose (no torch): config validation and the catalog read these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataInfo:
    """Facts a model builder needs; `task` is 'classification' or 'causal_lm'."""

    task: str
    num_classes: int | None = None
    in_channels: int | None = None
    image_size: int | None = None
    vocab_size: int | None = None
    seq_len: int | None = None  # language modelling: tokens per training sequence
    # the shape of one input (e.g. (C, H, W), or (F,) for feature vectors); example inputs are
    # a zero batch of it when the model gives none
    input_shape: tuple[int, ...] | None = None
    # how the data source turns a raw input into what the model sees (statistics of the training
    # split, channel conversion, resize/crop, tokenizer), so an export can take raw inputs; see
    # export/preprocess.py for the kinds. Not part of equality or hashing: a fact, not a key.
    preprocessing: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.input_shape is not None:  # JSON gives a list back
            object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))


@dataclass(frozen=True)
class DatasetSpec:
    """`build(data_config, device)` returns a `data.base.DataBundle`."""

    build: Callable[..., Any]
    task: str
    needs_root: bool = False
    description: str = ""
