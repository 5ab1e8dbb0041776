"""Results written by an earlier version, brought to the current keys before a plan runs.

prunebench 0.1.0 hashed the pretraining config into `base_id` through pydantic's repr of it (a
pydantic upgrade could have changed every dense model's id, and with it every step key); it
now hashes canonical JSON. A results directory from before holds its dense models and step
checkpoints under keys made from the old base id. When a planned run's stored rows carry
exactly the step keys the old base id gives, those steps and the dense model are renamed to
the current keys (files, then rows in one transaction), so the run resumes and its steps are
reused instead of recomputed. Anything else is left alone (and `driver.check_stored` refuses a
run whose stored keys match neither).
"""

from __future__ import annotations

from prunebench.config import RunConfig, base_id, data_identity, digest, identity
from prunebench.plan import Plan, plan_steps
from prunebench.store import Store


def legacy_base_id(cfg: RunConfig) -> str:
    """`base_id` as prunebench 0.1.0 computed it (the pretrain config by its repr)."""
    model = identity(cfg)["model"]
    return digest({"data": data_identity(cfg), "model": model, "pretrain": cfg.pretrain})


def upgrade(store: Store, plan: Plan) -> int:
    """Rename the legacy keys of `plan`'s stored steps; returns how many steps were renamed."""
    if not store.exists():
        return 0
    have = store.run_steps()
    steps: dict[str, str] = {}
    dense: dict[str, str] = {}
    for run in plan.runs:
        stored = have.get(run.run_id)
        if not stored:
            continue
        old_base, new_base = legacy_base_id(run.cfg), base_id(run.cfg)
        if old_base == new_base:
            continue
        old = plan_steps(run.cfg, old_base)
        pairs = {o.key: n.key for o, n in zip(old, run.steps, strict=True) if o.index in stored}
        if pairs and all(stored[o.index] == o.key for o in old if o.index in stored):
            steps.update(pairs)
            dense[old_base] = new_base
    if steps:
        store.rekey(steps, dense)
    return len(steps)
