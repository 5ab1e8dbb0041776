"""Models by name: `catalog.MODELS` declares them, each family's module builds them.

This package's import is light (no torch): heavy libraries load when a model is built.
"""

from prunebench.models.catalog import MODELS
from prunebench.models.spec import ModelSpec, StructuredHooks

__all__ = ["MODELS", "ModelSpec", "StructuredHooks"]
