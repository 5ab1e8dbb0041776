"""What `prunebench list KIND [TERM]` prints: every name a config can hold, with one line each.

Models include every torchvision classification model and every timm model as sources
(`torchvision:NAME`, `timm:NAME`), so that a search finds them; the free-form sources (`hf`,
`python:...`) are listed as patterns.
"""

from __future__ import annotations

import inspect

from prunebench.config.schedules import SCHEDULES
from prunebench.criteria.catalog import CRITERIA
from prunebench.data.catalog import DATASETS
from prunebench.errors import PrunebenchError
from prunebench.models.catalog import MODELS
from prunebench.models.zoo import timm_names, torchvision_names
from prunebench.pruning.presets import PRESETS
from prunebench.registry import suggest

Row = tuple[str, str]
PATTERNS = {
    "models": [
        ("hf", "a local Hugging Face folder (model.weights) or model.options.config"),
        ("python:FILE.py:FUNCTION", "your builder fn(data_info, **model.options) -> nn.Module"),
    ],
    "datasets": [
        ("python:FILE.py:FUNCTION", "your fn(**data.options) -> {'train', 'test'[, 'val']}"),
    ],
}


def models() -> list[Row]:
    rows = [(name, MODELS.get(name).description) for name in MODELS.names()]
    rows += PATTERNS["models"]
    rows += [(f"torchvision:{n}", "torchvision, untrained") for n in torchvision_names()]
    rows += [(f"timm:{n}", "timm, pretrained=False") for n in timm_names()]
    return rows


def datasets() -> list[Row]:
    rows = [(name, DATASETS.get(name).description) for name in DATASETS.names()]
    return rows + PATTERNS["datasets"]


SCORES = {
    "magnitude": "|w| (L1)",
    "magnitude_l2": "w^2 (L2)",
    "random": "uniform random (the baseline)",
    "taylor": "(g·w)^2, g the mean calibration gradient",
    "hessian": "OBD 1/2·h·w^2, h the empirical Fisher diagonal (mean per-sample squared "
    "gradient), not the exact Hessian",
    "wanda": "|W|·||X|| per input feature",
}


def criteria() -> list[Row]:
    def facts(name: str) -> str:
        data = "reads calibration data" if CRITERIA.fact(name, "needs_data") else "data-free"
        kind = "structured + unstructured" if CRITERIA.fact(name, "structured") else "unstructured"
        scores = f"{SCORES[name]}; " if name in SCORES else ""
        return f"{scores}{kind}; {data}"

    return [(name, facts(name)) for name in CRITERIA.names()]


def presets() -> list[Row]:
    return [
        (name, f"{PRESETS.get(name).model}: {PRESETS.get(name).description}")
        for name in PRESETS.names()
    ]


def regimes() -> list[Row]:
    def arguments(name: str) -> str:
        params = inspect.signature(SCHEDULES.get(name)).parameters
        return "regime." + ", regime.".join(params)

    return [(name, arguments(name)) for name in SCHEDULES.names()]


KINDS = {
    "models": models,
    "datasets": datasets,
    "criteria": criteria,
    "presets": presets,
    "regimes": regimes,
}


def listing(kind: str, term: str | None = None) -> list[Row]:
    """The rows of `kind`, those whose name contains `term` (case-insensitive) when given."""
    if kind not in KINDS:
        raise PrunebenchError(
            f"prunebench list takes {', '.join(KINDS)}, not '{kind}' ({suggest(kind, list(KINDS))})"
        )
    rows = KINDS[kind]()
    if term:
        rows = [row for row in rows if term.lower() in row[0].lower()]
    return rows
