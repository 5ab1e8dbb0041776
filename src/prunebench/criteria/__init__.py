"""Pruning criteria by name: each scores weights (higher = more important = kept)."""

from prunebench.criteria.base import Criterion
from prunebench.registry import Registry

CRITERIA: Registry[type[Criterion]] = Registry("criterion")

from prunebench.criteria import magnitude as _magnitude  # noqa: E402,F401  (registers itself)

__all__ = ["CRITERIA", "Criterion", "make_criterion"]


def make_criterion(name: str) -> Criterion:
    return CRITERIA.get(name)()
