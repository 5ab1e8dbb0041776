"""The registered criteria, declared without importing them (config validation stays light).

Each entry names its `Criterion` class and the facts a config check needs: whether it reads
calibration data and whether its scores mean anything for channel groups (`structured`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prunebench.registry import Registry

if TYPE_CHECKING:
    from prunebench.criteria.base import Criterion

CRITERIA: Registry[type[Criterion]] = Registry("criterion")

DATA_FREE = {"needs_data": False, "structured": True}
CRITERIA.declare("magnitude", "prunebench.criteria.magnitude:MagnitudeL1", **DATA_FREE)
CRITERIA.declare("magnitude_l2", "prunebench.criteria.magnitude:MagnitudeL2", **DATA_FREE)
CRITERIA.declare("random", "prunebench.criteria.magnitude:RandomScores", **DATA_FREE)
CRITERIA.declare(
    "taylor", "prunebench.criteria.taylor:TaylorFirstOrder", needs_data=True, structured=True
)
CRITERIA.declare(
    "hessian", "prunebench.criteria.hessian:HessianOBD", needs_data=True, structured=True
)
CRITERIA.declare("wanda", "prunebench.criteria.wanda:Wanda", needs_data=True, structured=False)


def make_criterion(name: str) -> Criterion:
    return CRITERIA.get(name)()
