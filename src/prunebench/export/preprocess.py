"""The input preprocessing an export carries, replayed on raw inputs.

A data source records in `DataInfo.preprocessing` how it turns a raw input into what the model
sees; export/pruned.py writes it into structure.json and `load_pruned(path, raw_inputs=True)`
wraps the model with `Preprocess` so it takes inputs as the data source gave them:
    standardize   feature vectors (N, F): (x - mean) / std per feature (the training split's);
    image         images: arrays (N, C, H, W), (N, H, W, C) or (N, H, W) as stored (`layout`),
                  or, with `decode`, image files / PIL images / encoded bytes (converted to
                  `decode.mode`, shorter side resized to `decode.size`, centre crop); then
                  x / max_value, resized to `resize` when set, (x - mean) / std per channel;
    tokens        token ids (N, T) pass unchanged; `tokenizer` names the tokenizer that made them.
Without a record (an export that predates it, a Python dataset) inputs pass unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prunebench.data.arrays import Standardize, image_tensor
from prunebench.data.images import decode
from prunebench.data.transforms import ImageBatchTransform
from prunebench.errors import PrunebenchError


class Preprocess:
    """Raw inputs -> the float tensor the model was trained on (see the module docstring)."""

    def __init__(self, steps: dict[str, Any] | None) -> None:
        self.steps = dict(steps or {})
        self.kind = self.steps.get("kind")
        if self.kind not in (None, "standardize", "image", "tokens"):
            raise PrunebenchError(f"the export's preprocessing kind '{self.kind}' is unknown")
        s = self.steps
        if self.kind == "standardize":
            self.features = Standardize(torch.tensor(s["mean"]), torch.tensor(s["std"]))
        if self.kind == "image":
            self.images = ImageBatchTransform(
                s["mean"], s["std"], size=s.get("resize"), max_value=s["max_value"]
            )

    def __call__(self, inputs: Any) -> torch.Tensor:
        if self.kind == "standardize":
            return self.features(torch.as_tensor(np.asarray(inputs)).float())
        if self.kind == "image":
            return self.images(self._pixels(inputs))
        return inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))

    def _pixels(self, inputs: Any) -> torch.Tensor:
        """(N, C, H, W) pixels, uint8 or float, before normalisation."""
        decode_step = self.steps.get("decode")
        if decode_step is not None and not _is_array(inputs):
            files = [inputs] if _is_one_image(inputs) else list(inputs)
            channels = 3 if decode_step["mode"] == "RGB" else 1
            return torch.stack([decode(f, int(decode_step["size"]), channels) for f in files])
        array = inputs.numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
        return image_tensor(array, self.steps.get("layout", "auto"))


def _is_array(inputs: Any) -> bool:
    return isinstance(inputs, (np.ndarray, torch.Tensor))


def _is_one_image(inputs: Any) -> bool:
    if isinstance(inputs, (str, Path, bytes)):
        return True
    return not isinstance(inputs, Sequence) and hasattr(inputs, "convert")  # a PIL image


class RawInputModel(nn.Module):
    """An exported model behind its data source's preprocessing: `model(raw)` equals
    `model.model(model.preprocess(raw))`."""

    def __init__(self, model: nn.Module, preprocess: Preprocess) -> None:
        super().__init__()
        self.model = model
        self.preprocess = preprocess

    def forward(self, inputs: Any) -> Any:
        return self.model(self.preprocess(inputs))
