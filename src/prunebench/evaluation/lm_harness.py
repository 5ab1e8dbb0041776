"""Zero-shot (or few-shot) multiple-choice accuracy through lm-eval-harness, on tasks read from
local YAML files, with nothing downloaded.

lm-eval is an optional, heavy dependency (the `[lm]` extra; importing it takes seconds): it is
imported here, at use, and nowhere else in prunebench, so that runs without `eval.lm_eval`
never load it. The model is the pruned model in memory, wrapped in lm-eval's `HFLM` with the
run's tokenizer; tasks come from `TaskManager(include_path=...)` without lm-eval's built-in
tasks (whose datasets would be downloaded), typically `dataset_path: json` with local
`data_files`. Hugging Face's offline switches are on while lm-eval runs.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from prunebench.config.evaluation import (
    TASK_FILE_SUFFIXES,
    LmEvalTasks,
    lm_eval_missing,
    lm_eval_not_installed_message,
)
from prunebench.errors import ConfigError, PrunebenchError
from prunebench.measure import eval_mode
from prunebench.store.example_outcomes import pack_correct

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
SEED = 1234  # lm-eval's default seeds, fixed: few-shot examples and any sampling repeat
SKIPPED_KEYS = {"alias", "name", "sample_len", "samples"}


def version() -> str:
    return importlib.metadata.version("lm_eval")


@contextmanager
def offline() -> Iterator[None]:
    """Hugging Face's offline switches on (environment and the constants of the libraries
    already imported, which read them at import) and datasets' progress bars off; everything
    put back afterwards."""
    import datasets.config
    import datasets.utils
    import huggingface_hub.constants

    saved_env = {k: os.environ.get(k) for k in OFFLINE}
    constants = [
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
        (huggingface_hub.constants, "HF_HUB_OFFLINE"),
    ]
    saved = [(m, name, getattr(m, name)) for m, name in constants if hasattr(m, name)]
    bars = datasets.utils.are_progress_bars_disabled()
    os.environ.update(OFFLINE)
    for module, name, _ in saved:
        setattr(module, name, True)
    datasets.utils.disable_progress_bars()  # "Generating test split" for every task
    try:
        yield
    finally:
        if not bars:
            datasets.utils.enable_progress_bars()
        for module, name, value in saved:
            setattr(module, name, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _task_manager(cfg: LmEvalTasks) -> Any:
    if missing := lm_eval_missing():
        raise ConfigError(f"eval.lm_eval: {lm_eval_not_installed_message(missing)}")
    from lm_eval.tasks import TaskManager

    folders = [str(p.resolve().parent) for p in cfg.task_files()]
    if cfg.include_path is not None:
        folders.insert(0, str(cfg.include_path.resolve()))
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    return TaskManager(include_path=list(dict.fromkeys(folders)), include_defaults=False)


def task_names(cfg: LmEvalTasks, manager: Any | None = None) -> list[str]:
    """The task names of `cfg.tasks` (a YAML file: the task it defines); a ConfigError naming
    the first task no local file defines, before any compute."""
    manager = manager or _task_manager(cfg)
    known = manager.all_tasks
    by_file: dict[Path, str] = {}
    for name in known:
        entry = manager.task_index.get(name)
        path = getattr(entry, "yaml_path", None)
        if path is not None:
            by_file.setdefault(Path(path).resolve(), name)
    names = []
    for task in cfg.tasks:
        if task.endswith(TASK_FILE_SUFFIXES):
            name = by_file.get(Path(task).resolve())
            if name is None:
                raise ConfigError(f"eval.lm_eval.tasks: '{task}' defines no lm-eval task")
            names.append(name)
        elif task in known:
            names.append(task)
        else:
            shown = ", ".join(known[:10]) or "none"
            raise ConfigError(
                f"eval.lm_eval.tasks: unknown task '{task}' in {cfg.include_path} "
                f"(tasks found there: {shown})"
            )
    return names


def _name(task: str, metric: str, kind: str) -> str:
    return f"{task}/{metric}" if kind in ("", "none") else f"{task}/{metric},{kind}"


def sample_outcomes(samples: dict[str, list[dict]], metrics: dict[str, float]) -> dict[str, bytes]:
    """name -> right/wrong per document (in document order, packed as the test outcomes are),
    for each metric that scores every document 0 or 1 and whose documents' mean is the task's
    value: the per-example outcomes a report needs to count the task's own noise. Metrics that
    are not right/wrong per document (an F1, a perplexity) get none."""
    per_doc: dict[str, list[tuple[int, Any]]] = {}
    for task, docs in samples.items():
        for doc in docs:
            for metric in doc.get("metrics", ()):
                name = _name(task, metric, str(doc.get("filter", "none")))
                per_doc.setdefault(name, []).append((int(doc["doc_id"]), doc.get(metric)))
    out = {}
    for name, pairs in per_doc.items():
        values = [v for _, v in sorted(pairs, key=lambda p: p[0])]
        if name not in metrics or not all(
            isinstance(v, bool | int | float | np.number | np.bool_) and v in (0, 1) for v in values
        ):
            continue
        correct = np.array(values, dtype=bool)
        if abs(float(correct.mean()) - metrics[name]) <= 1e-9:  # what lm-eval reported, exactly
            out[name] = pack_correct(correct)
    return out


def accuracies(
    model: nn.Module, tokenizer: Any, cfg: LmEvalTasks
) -> tuple[dict[str, float], dict[str, bytes]]:
    """lm-eval's metrics of `model` on the tasks of `cfg`: 'TASK/acc', 'TASK/acc_norm', ...
    (a filter other than lm-eval's 'none' is kept in the name: 'TASK/acc,FILTER'), and the
    right/wrong outcome of each document where a metric is one (`sample_outcomes`). It runs
    on the model's device."""
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        raise PrunebenchError(
            f"eval.lm_eval needs a Hugging Face causal language model; this run's model is a "
            f"{type(model).__name__}"
        )
    if tokenizer is None:
        raise PrunebenchError("eval.lm_eval needs the run's tokenizer; this dataset has none")
    with offline():
        manager = _task_manager(cfg)
        names = task_names(cfg, manager)
        import lm_eval
        from lm_eval.models.huggingface import HFLM

        with eval_mode(model):
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size)
            out = lm_eval.simple_evaluate(
                model=lm,
                tasks=names,
                task_manager=manager,
                num_fewshot=cfg.num_fewshot,
                limit=cfg.limit,
                bootstrap_iters=0,
                log_samples=True,  # per-document outcomes
                random_seed=SEED,
                numpy_random_seed=SEED,
                torch_random_seed=SEED,
                fewshot_random_seed=SEED,
                verbosity="ERROR",
            )
    metrics: dict[str, float] = {}
    for task, values in out["results"].items():
        for key, value in values.items():
            metric, _, kind = key.partition(",")
            if key in SKIPPED_KEYS or "stderr" in metric or not isinstance(value, int | float):
                continue
            metrics[_name(task, metric, kind)] = float(value)
    return metrics, sample_outcomes(out.get("samples") or {}, metrics)
