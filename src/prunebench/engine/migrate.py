"""Results written by an earlier version, brought to the current keys before a plan runs.

prunebench 0.1.0 hashed the pretraining config into `base_id` through pydantic's repr of it (a
pydantic upgrade could have changed every dense model's id, and with it every step key); it
now hashes canonical JSON. A results directory from before holds its dense models and step
checkpoints under keys made from the old base id. When a stored run's rows carry exactly the
step keys its stored config gives with the old base id, those steps and the dense model are
renamed to the current keys (files, then rows in one transaction), so the run resumes and its
steps are reused by any new run that shares them. Anything else is left alone (and
`resume.check_stored` refuses a planned run whose stored keys match neither).
"""

from __future__ import annotations

import json

from prunebench.config.identity import base_id, data_identity, digest, identity
from prunebench.config.schema import RunConfig
from prunebench.engine.plan import plan_steps
from prunebench.errors import PrunebenchError
from prunebench.store.database import Store


def legacy_base_id(cfg: RunConfig) -> str:
    """`base_id` as prunebench 0.1.0 computed it (the pretrain config by its repr)."""
    model = identity(cfg)["model"]
    return digest({"data": data_identity(cfg), "model": model, "pretrain": cfg.pretrain})


def _stored_config(record: dict) -> RunConfig | None:
    try:
        return RunConfig.model_validate(json.loads(record["config_json"] or "null"))
    except (ValueError, TypeError, PrunebenchError):  # not a config this version can read
        return None


def upgrade(store: Store) -> int:
    """Rename the legacy keys of every stored run; returns how many steps were renamed."""
    if not store.exists():
        return 0
    have = store.run_steps()
    steps: dict[str, str] = {}
    dense: dict[str, str] = {}
    for record in store.runs():
        stored = have.get(record["run_id"])
        cfg = _stored_config(record) if stored else None
        if cfg is None:
            continue
        old_base, new_base = legacy_base_id(cfg), base_id(cfg)
        if old_base == new_base or record["base_id"] != old_base:
            continue
        old, new = plan_steps(cfg, old_base), plan_steps(cfg, new_base)
        if all(stored[o.index] == o.key for o in old if o.index in stored):
            steps.update({o.key: n.key for o, n in zip(old, new, strict=True) if o.index in stored})
            dense[old_base] = new_base
    if steps:
        store.rekey(steps, dense)
    return len(steps)
