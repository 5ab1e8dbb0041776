"""The evaluations a run's `eval:` section asks for, each with the digest of its setting.

An evaluation is stored per step key, metric name and setting (store/metrics.py): the setting
holds what decides its values besides the step itself (the text file's sha256, context and
stride; the task files' sha256, limit, few-shot count and lm-eval's version), so an evaluation
already stored for a step is not computed again, and a changed file is. The tokenizer is the
run's data's, which the step key already holds.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from prunebench.config.evaluation import EvalConfig, LmEvalTasks, PerplexityEval
from prunebench.config.identity import canonical_json, digest
from prunebench.errors import ConfigError
from prunebench.evaluation import lm_harness
from prunebench.evaluation.perplexity import strided_perplexity, text_ids
from prunebench.store.example_outcomes import pack_nll


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a step: what it runs (`spec`) and the digest of its setting."""

    spec: PerplexityEval | LmEvalTasks
    setting: dict[str, Any]

    @property
    def key(self) -> str:
        return digest(self.setting)

    @property
    def setting_json(self) -> str:
        return canonical_json(self.setting)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _task_files(cfg: LmEvalTasks) -> dict[str, str]:
    """sha256 of every file the tasks are read from: the include folder's files (recursively)
    and the task files named directly."""
    files = [Path(p) for p in cfg.task_files()]
    if cfg.include_path is not None:
        files += [p for p in cfg.include_path.rglob("*") if p.is_file()]
    return {str(p.resolve()): sha256_of(p) for p in sorted(set(files))}


def evaluations(cfg: EvalConfig, seq_len: int) -> list[Evaluation]:
    """The evaluations `cfg` asks for, their settings read from the files now."""
    out = []
    if cfg.perplexity is not None:
        ppl = cfg.perplexity
        context, stride = ppl.window(seq_len)
        setting = {
            "kind": "perplexity",
            "file": str(ppl.file.resolve()),
            "sha256": sha256_of(ppl.file),
            "context": context,
            "stride": stride,
        }
        out.append(Evaluation(ppl, setting))
    if cfg.lm_eval is not None:
        tasks = cfg.lm_eval
        setting = {
            "kind": "lm_eval",
            "tasks": tasks.tasks,
            "files": _task_files(tasks),
            "limit": tasks.limit,
            "num_fewshot": tasks.num_fewshot,
            "lm_eval": lm_harness.version(),
        }
        out.append(Evaluation(tasks, setting))
    return out


def check(cfg: EvalConfig) -> None:
    """What needs lm-eval itself (every task defined by a local file): a ConfigError before
    any compute."""
    if cfg.lm_eval is not None:
        lm_harness.task_names(cfg.lm_eval)


def _check_perplexity(context: int, model: nn.Module, tokenizer: Any) -> None:
    longest = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(longest, int) and context > longest:
        raise ConfigError(
            f"eval.perplexity: context {context} is longer than the model's "
            f"{longest} positions; give eval.perplexity.context <= {longest}"
        )
    if tokenizer is None:
        raise ConfigError("eval.perplexity needs the run's tokenizer; this dataset has none")


def check_model(cfg: EvalConfig, seq_len: int, model: nn.Module, tokenizer: Any) -> None:
    """What needs the model and the data (the perplexity window fits the model's positions;
    there is a tokenizer): a ConfigError before anything is trained, not after."""
    if cfg.perplexity is not None:
        _check_perplexity(cfg.perplexity.window(seq_len)[0], model, tokenizer)


def perplexity_name(cfg: PerplexityEval) -> str:
    return f"{cfg.file.stem}/ppl"


@dataclass(frozen=True)
class Measured:
    """What one evaluation of a model gave."""

    values: dict[str, float]  # metric name -> value
    outcomes: dict[str, bytes]  # metric name -> per-example outcomes (example_outcomes format)
    seconds: float


def run(evaluation: Evaluation, model: nn.Module, tokenizer: Any, device: Any) -> Measured:
    """One evaluation of `model`, with per-example outcomes where the metric has them: each
    scoring window's NLL for a perplexity (their token-weighted mean is its log), each
    document's right/wrong for lm-eval's accuracies."""
    started = time.perf_counter()
    spec = evaluation.spec
    if isinstance(spec, PerplexityEval):
        context, stride = evaluation.setting["context"], evaluation.setting["stride"]
        _check_perplexity(context, model, tokenizer)
        ids = text_ids(spec.file, tokenizer)
        ppl = strided_perplexity(model, ids, context, stride, device)
        name = perplexity_name(spec)
        metrics = {name: ppl.ppl}
        outcomes = {name: pack_nll(np.array(ppl.window_nll), np.array(ppl.window_tokens))}
    else:
        metrics, outcomes = lm_harness.accuracies(model, tokenizer, spec)
    return Measured(metrics, outcomes, time.perf_counter() - started)
