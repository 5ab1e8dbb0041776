"""Dataset-specific settings from `data.options`, checked against each builder's defaults."""

from __future__ import annotations

from typing import Any

from prunebench.errors import ConfigError
from prunebench.registry import suggest


def dataset_options(name: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`defaults` updated with `given`; an unknown key is a ConfigError naming it."""
    for key in given:
        if key not in defaults:
            raise ConfigError(
                f"data.options.{key} is not an option of dataset '{name}' "
                f"({suggest(key, list(defaults))})"
            )
    return {**defaults, **given}
