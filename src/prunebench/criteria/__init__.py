"""Pruning criteria by name: each scores weights (higher = more important = kept).

`catalog.CRITERIA` declares them; this package's import is light (no torch).
"""

from prunebench.criteria.catalog import CRITERIA, make_criterion

__all__ = ["CRITERIA", "make_criterion"]
