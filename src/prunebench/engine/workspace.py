"""What the runs computed in one process share: one data bundle per data identity and device, one
dense model per base id, one `RunContext` per run.

The driver and every Ray worker hold one Workspace; they differ only in where a dense model
comes from (`DenseSource`): the driver loads it from the results directory or pretrains and
stores it, a worker rebuilds the one the driver shipped.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from prunebench.config.identity import base_id, canonical_json, data_identity, run_id
from prunebench.config.schema import RunConfig
from prunebench.data.base import DataBundle
from prunebench.data.build import build_data
from prunebench.devices import resolve_device
from prunebench.engine.pretrain import Dense, initial_model
from prunebench.engine.step import RunContext
from prunebench.errors import ConfigError, PrunebenchError
from prunebench.evaluation.suite import check_model as check_evaluations
from prunebench.models.build import check_output_width, model_spec
from prunebench.progress import Progress
from prunebench.pruning.factory import make_pruner
from prunebench.tasks import Task, make_task

DenseSource = Callable[[RunConfig, DataBundle, Task, torch.device], Dense]


class Workspace:
    def __init__(self, dense_source: DenseSource, progress: Progress | None = None) -> None:
        self.dense_source = dense_source
        self.progress = progress or Progress()
        self._data: dict[str, DataBundle] = {}
        self._dense: dict[str, Dense] = {}
        self._contexts: dict[str, RunContext] = {}
        self._checked: set[str] = set()

    def data(self, cfg: RunConfig) -> DataBundle:
        device = resolve_device(cfg.device)
        key = f"{canonical_json(data_identity(cfg))}|{device}"
        if key not in self._data:
            self._data[key] = build_data(cfg.data, device)
        return self._data[key]

    def dense(self, cfg: RunConfig) -> Dense:
        bid = base_id(cfg)
        if bid not in self._dense:
            data = self.data(cfg)
            device = resolve_device(cfg.device)
            self._dense[bid] = self.dense_source(cfg, data, make_task(data.info.task), device)
        return self._dense[bid]

    def context(self, cfg: RunConfig) -> RunContext:
        rid = run_id(cfg)
        if rid not in self._contexts:
            self._contexts[rid] = RunContext(cfg, self.data(cfg), self.dense(cfg), self.progress)
        return self._contexts[rid]

    @staticmethod
    def _probe_pruning(cfg: RunConfig, model: torch.nn.Module, data: DataBundle) -> None:
        """Build the pruner; a structured one also cuts this throwaway model to the run's last
        target (magnitude scores: no data needed), so that a model Torch-Pruning can trace but
        not cut (attention it does not know, a reshape of the channels) is refused before any
        pretraining, not after it."""
        spec = model_spec(cfg.model)
        if cfg.prune.structure != "structured":
            make_pruner(cfg.prune, model, spec, data.info)
            return
        probe = cfg.prune.model_copy(update={"criterion": "magnitude", "latency": False})
        make_pruner(probe, model, spec, data.info).prune_to(model, cfg.regime.schedule()[-1])

    def check(self, cfg: RunConfig) -> None:
        """What needs the model (model options, local weights, prune.exclude names, structured
        tracing, the `eval:` perplexity window): checked before anything is trained or written (claimed, even), once per
        model and prune config."""
        evaluation = None if cfg.eval is None else cfg.eval.model_dump(mode="json")
        key = canonical_json(
            [
                cfg.model.model_dump(mode="json"),
                cfg.prune.model_dump(mode="json"),
                evaluation,
                cfg.data.seq_len,
            ]
        )
        if key not in self._checked:
            data = self.data(cfg)
            try:
                with warnings.catch_warnings():  # a probe: its error is the one line we print
                    warnings.simplefilter("ignore")
                    model = initial_model(cfg, data)  # local weights read and fitted, too
                    check_output_width(model, cfg.model, data.info)
                    if cfg.eval is not None:
                        check_evaluations(cfg.eval, cfg.data.seq_len, model, data.tokenizer)
                    self._probe_pruning(cfg, model, data)
            except PrunebenchError:
                raise
            except SystemExit as exc:  # user code's exit is an error, not ours to take
                raise ConfigError(
                    f"model '{cfg.model.name}' exited (SystemExit: {exc.code}) instead of "
                    "building and running; fix its builder"
                ) from None
            except Exception as exc:  # e.g. model.options={width: 0}: no forward pass at all
                first = (str(exc).strip().splitlines() or [""])[0]
                raise ConfigError(
                    f"model '{cfg.model.name}' does not build or run with model.options "
                    f"{cfg.model.options} ({type(exc).__name__}: {first[:200]}); fix model.options"
                ) from None
            self._checked.add(key)
