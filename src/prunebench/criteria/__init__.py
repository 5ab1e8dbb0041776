"""Pruning criteria by name: each scores weights (higher = more important = kept)."""

from prunebench.criteria.base import Criterion
from prunebench.registry import Registry

CRITERIA: Registry[type[Criterion]] = Registry("criterion")

from prunebench.criteria import hessian as _hessian  # noqa: E402,F401  (registers itself)
from prunebench.criteria import magnitude as _magnitude  # noqa: E402,F401
from prunebench.criteria import taylor as _taylor  # noqa: E402,F401
from prunebench.criteria import wanda as _wanda  # noqa: E402,F401

__all__ = ["CRITERIA", "Criterion", "make_criterion"]


def make_criterion(name: str) -> Criterion:
    return CRITERIA.get(name)()
