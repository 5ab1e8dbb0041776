"""A run's identities: what of a validated config shapes its results, hashed.

`run_id` (the whole experiment), `base_id` (the dense model it starts from) and `data_identity`
(the ONE definition of "same data") hash canonical JSON together with SCHEMA_VERSION, so the
same experiment always lands on the same id and a field added later (ADDED_FIELDS) leaves every
earlier id as it was.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from prunebench.config.adaptive_rule import RULE_VERSION

if TYPE_CHECKING:
    from prunebench.config.schema import RunConfig

# Bump when the meaning of stored rows or of a config field changes: old run ids stop matching.
SCHEMA_VERSION = 1

# Fields that change how a run is executed, labelled or logged, not the experiment: the label,
# where it runs, how the arithmetic is executed (compile) and where it is logged. A GPU's rounding
# differs from the CPU's and a compiled graph's from an eager one's, but the same experiment keeps
# one id, so a step computed one way is resumed and reused the other way, exactly like a step
# computed on another device. `eval` measures stored steps without changing them: its results
# are kept per step and setting (store/metrics.py), so adding it to a finished run evaluates
# that run's steps and trains nothing.
NON_IDENTITY_FIELDS = {"name", "device", "train", "log", "eval"}
# Data fields that change how batches are loaded for evaluation, not what a model learns or scores.
DATA_LOADING_FIELDS = {"num_workers", "eval_batch_size"}
# Fields added after schema 1 (dotted path in the identity -> the value that reproduces what
# earlier versions did). At that value a field is left out of every identity, so results stored
# by an earlier version still resume and are reused; any other value gives new ids. Changing the
# default of an OLDER field changes its dumped value, hence every id that includes it: it is
# never matched silently. FitSettings fields count under "fit.".
ADDED_FIELDS: dict[str, Any] = {
    "prune.include": [],
    "regime.adaptive": None,
    "prune.uniform_widths": False,
    "finetune.distill": None,
    "fit.distill": None,  # a step's fine-tuning settings in its key (engine/plan.py)
}


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest(obj: Any, length: int = 16) -> str:
    """Stable short hash of a JSON-able object together with the schema version."""
    payload = canonical_json({"schema": SCHEMA_VERSION, "value": obj})
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def without_added(dump: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`dump` minus the ADDED_FIELDS (under `prefix`) that hold their earlier-version value."""
    out: dict[str, Any] = {}
    for key, value in dump.items():
        path = f"{prefix}{key}"
        if path in ADDED_FIELDS and value == ADDED_FIELDS[path]:
            continue
        out[key] = without_added(value, path + ".") if isinstance(value, dict) else value
    return out


def stored_dump(cfg: RunConfig) -> dict[str, Any]:
    """The whole config as rows, files and trackers store it; `eval` only when given, so that
    a run without it stores what earlier versions stored."""
    return cfg.model_dump(mode="json", exclude={"eval"} if cfg.eval is None else None)


def identity(cfg: RunConfig) -> dict[str, Any]:
    """Everything that shapes a run's results, as JSON (the run id hashes it)."""
    return identity_of_dump(cfg.model_dump(mode="json"))


def identity_of_dump(dump: dict[str, Any]) -> dict[str, Any]:
    """`identity` of a config's JSON dump (as the runs table stores it). An adaptive run's
    steps are chosen by its rule's code, so the rule's version is part of it."""
    ident = without_added({k: v for k, v in dump.items() if k not in NON_IDENTITY_FIELDS})
    if ident["regime"]["name"] == "adaptive":
        ident["regime"]["rule_version"] = RULE_VERSION
    return ident


def made_by_this_version(stored_run_id: str, config_json: str) -> bool:
    """Whether a stored run's id is the one this version gives its config: False for an
    adaptive run stored by an earlier rule (its steps were chosen by other code)."""
    return digest(identity_of_dump(json.loads(config_json))) == stored_run_id


def data_identity(cfg: RunConfig) -> dict[str, Any]:
    """What makes two runs see the same data (split, batches, augmentation): the one definition
    used by the dense model's id, the step keys and the in-memory data caches."""
    return _data_part(identity(cfg))


def _data_part(ident: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ident["data"].items() if k not in DATA_LOADING_FIELDS}


def run_id(cfg: RunConfig) -> str:
    return digest(identity(cfg))


def base_id(cfg: RunConfig) -> str:
    """Identity of the dense model: the data split, the architecture and how it was trained."""
    ident = identity(cfg)
    return digest(
        {"data": _data_part(ident), "model": ident["model"], "pretrain": ident["pretrain"]}
    )
