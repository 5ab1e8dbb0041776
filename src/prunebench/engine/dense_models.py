"""The driver's source of dense models: the one stored under a config's base id, else trained
now and stored (the driver is the only writer of the results directory)."""

from __future__ import annotations

import time

import torch

from prunebench.config.identity import base_id, stored_dump
from prunebench.config.schema import RunConfig
from prunebench.data.base import DataBundle
from prunebench.engine.leases import Leases
from prunebench.engine.pretrain import Dense, train_dense
from prunebench.engine.workspace import Workspace
from prunebench.errors import CheckpointError
from prunebench.models.build import build_model
from prunebench.progress import Progress
from prunebench.store.checkpoints import load_weights
from prunebench.store.database import Store
from prunebench.tasks import Task


def stored_dense(store: Store, progress: Progress | None = None, leases: Leases | None = None):
    """Dense models from `store` (checked against their sha256), else trained now and stored.
    A stored one that does not match its hash or does not load is trained again, with one
    warning. With `leases`, a dense model that another process is training is waited for, not
    trained twice."""
    progress = progress or Progress()
    warned: set[str] = set()  # base ids, one warning / message each
    waited: set[str] = set()

    def source(cfg: RunConfig, data: DataBundle, task: Task, device: torch.device) -> Dense:
        model = build_model(cfg.model, data.info)
        bid = base_id(cfg)
        while True:
            seen = store.written_at("dense").get(bid)
            try:
                stored = store.load_dense(bid)
                if stored is not None:
                    tensors, meta = stored
                    load_weights(model, tensors, str(store.dense_path(bid)))
                    return Dense(model.to(device), meta["metrics"], bid, reused=True)
            except (CheckpointError, KeyError) as exc:
                if bid not in warned:
                    warned.add(bid)
                    progress.warning(f"{exc}; training the dense model again")
            if leases is None:
                break
            state = leases.take("dense", bid, seen)
            if state == "leased":
                break
            if state == "busy":  # another process is training it
                if bid not in waited:
                    waited.add(bid)
                    progress.message(f"waiting for another process to pretrain {bid}")
                time.sleep(leases.poll)
        try:
            dense, history = train_dense(cfg, data, task, device, progress)
            meta = {
                "base_id": bid,
                "metrics": dense.metrics,
                "history": history,
                "config": stored_dump(cfg),
            }
            owner = leases.owner if leases else None
            store.save_dense(bid, dense.model.state_dict(), meta, owner=owner)
        except BaseException:
            if leases is not None:
                leases.release("dense", bid)
            raise
        return dense

    return source


def dense_model(cfg: RunConfig, store: Store, progress: Progress | None = None) -> Dense:
    """The dense model of `cfg` (`prunebench pretrain`): reused from `store` or trained now,
    after the same model checks as a run."""
    workspace = Workspace(stored_dense(store, progress), progress)
    workspace.check(cfg)
    return workspace.dense(cfg)
