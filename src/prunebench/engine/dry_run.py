"""A sweep's dry run: the plan's tree and step counts, and its estimated wall time, without
training or writing anything.

The estimate builds its data through a `Workspace`, the same builder and cache as the runs
themselves, so a dry run accepts exactly the datasets a run does (`python:` sources too), and
`check_sources` refuses the model and dataset names the run would refuse (a misspelt
`timm:` name, a `python:` file without the function) before anything is printed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import torch

from prunebench.config.identity import base_id
from prunebench.config.schema import RunConfig
from prunebench.data.base import DataBundle
from prunebench.data.build import dataset_spec
from prunebench.engine.estimate import estimate, render
from prunebench.engine.plan import Plan, count, render_counts, render_tree
from prunebench.engine.pretrain import Dense
from prunebench.engine.workspace import Workspace
from prunebench.evaluation.suite import check as check_evaluations
from prunebench.models.build import model_spec
from prunebench.tasks import Task


def check_sources(configs: Iterable[RunConfig]) -> None:
    """Every distinct `model.name` and `data.name` resolved as the run resolves them (torchvision
    and timm names looked up, `python:` sources imported): an unknown name is the run's one-line
    error. Builds nothing."""
    models, datasets = set(), set()
    for cfg in configs:
        if cfg.model.name not in models:
            models.add(cfg.model.name)
            model_spec(cfg.model)
        if cfg.data.name not in datasets:
            datasets.add(cfg.data.name)
            dataset_spec(cfg.data)
        if cfg.eval is not None:  # eval.lm_eval's tasks, found in local files
            check_evaluations(cfg.eval)


def plan_lines(plan: Plan, stored: Mapping[str, int]) -> list[str]:
    """The shared-step tree and the naive-vs-planned counts; `stored`: step key -> epochs of
    the steps already in the results directory."""
    return [*render_tree(plan, stored), "", *render_counts(count(plan, stored))]


def _no_dense(cfg: RunConfig, data: DataBundle, task: Task, device: torch.device) -> Dense:
    raise AssertionError("a dry run trains and loads no dense model")


def estimate_lines(
    plan: Plan, stored: Collection[str], stored_dense: Collection[str], workers: int | None
) -> list[str]:
    """Time a few batches of each model and data; the plan's wall time per number of steps side
    by side. `stored`: step keys already computed; `stored_dense`: base ids of the dense models
    already stored. Builds data and models in memory only: writes nothing."""
    workspace = Workspace(_no_dense)
    dense = {base_id(r.cfg): r.cfg for r in plan.runs}
    missing = [cfg for bid, cfg in dense.items() if bid not in stored_dense]
    todo = [key for key in plan.nodes if key not in stored]
    est = estimate(plan, todo, workspace.data, missing)
    return ["", *render(est, {1, 2, 4, 8, workers or 1})]
