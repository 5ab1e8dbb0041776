"""The evaluations of `eval:` (evaluation/suite.py) on the stored steps of finished runs: the
final step of each run, or every step with `eval.every_step`, and the dense model they start
from (the reference, stored under the key `dense_key(base_id)`).

They run in the driver after its steps, on the model rebuilt from each step's checkpoint (the
same path for a step computed now, reused from another run or stored by an earlier
invocation), and the driver writes them (store/metrics.py). An evaluation belongs to its step:
runs sharing a step share it, and one stored with the same setting is not computed again, so
adding `eval:` to a finished run evaluates its steps and trains nothing. An evaluation that
fails is a warning, not a failed run: its training is stored, and the next invocation tries
the evaluation again.
"""

from __future__ import annotations

from collections.abc import Iterable

from prunebench.config.evaluation import EvalConfig
from prunebench.config.identity import base_id, canonical_json
from prunebench.engine.plan import Plan, PlannedRun
from prunebench.engine.workspace import Workspace
from prunebench.errors import PrunebenchError, StorageError
from prunebench.evaluation import suite
from prunebench.progress import Progress
from prunebench.store.database import Store
from prunebench.store.metrics import dense_key


class StepEvaluator:
    """What `eval:` asks of the plan's runs: checked before any compute, run after it."""

    def __init__(self, plan: Plan, store: Store, workspace: Workspace, progress: Progress):
        self.plan, self.store, self.workspace, self.progress = plan, store, workspace, progress
        self.evaluated = 0  # evaluations computed by this invocation
        self._settings: dict[tuple[str, int], list[suite.Evaluation]] = {}

    def runs(self) -> list[PlannedRun]:
        return [r for r in self.plan.runs if r.cfg.eval is not None]

    def check(self) -> None:
        """Every task an `eval.lm_eval` names is defined by a local file (a ConfigError, one
        line, before anything is trained)."""
        seen: set[str] = set()
        for run in self.runs():
            key = canonical_json(run.cfg.eval.model_dump(mode="json"))
            if key not in seen:
                seen.add(key)
                suite.check(run.cfg.eval)

    def evaluate(self, finished: Iterable[str]) -> None:
        """Evaluate the steps of the `finished` runs that lack an evaluation."""
        finished = set(finished)
        for run in self.runs():
            if run.run_id in finished:
                self._evaluate_run(run)

    def _evaluate_run(self, run: PlannedRun) -> None:
        cfg = run.cfg
        steps = run.steps if cfg.eval.every_step else run.steps[-1:]
        targets = [(dense_key(base_id(cfg)), 0), *((s.key, s.index) for s in steps)]
        try:  # hashes the files: one removed since the start fails this run's evaluations only
            evaluations = self._evaluations(cfg.eval, cfg.data.seq_len)
        except Exception as exc:
            self._not_evaluated(run, "its steps", exc)
            return
        stored = self.store.evaluated(key for key, _ in targets)
        for key, index in targets:
            missing = [e for e in evaluations if (key, e.key) not in stored]
            if not missing:
                continue
            what = f"step {index}" if index else "the dense model"
            try:
                self._evaluate(run, key, what, missing)
            except StorageError:
                raise
            except Exception as exc:
                self._not_evaluated(run, what, exc)
            stored |= {(key, e.key) for e in missing}  # shared steps and dense models: once

    def _not_evaluated(self, run: PlannedRun, what: str, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, PrunebenchError) else repr(exc)
        self.progress.warning(
            f"{run.title}: {what} not evaluated ({reason}); its training is stored: "
            "run the same command again to evaluate it"
        )

    def _evaluations(self, cfg: EvalConfig, seq_len: int) -> list[suite.Evaluation]:
        """suite.evaluations, once per setting: it hashes the text file and every file of the
        task folder, which the runs of a sweep share."""
        key = (canonical_json(cfg.model_dump(mode="json")), seq_len)
        if key not in self._settings:
            self._settings[key] = suite.evaluations(cfg, seq_len)
        return self._settings[key]

    def _evaluate(
        self, run: PlannedRun, key: str, what: str, missing: list[suite.Evaluation]
    ) -> None:
        ctx = self.workspace.context(run.cfg)
        if key == dense_key(ctx.dense.base_id):
            model = ctx.dense.model
        else:
            tensors, meta = self.store.load_checkpoint(key)
            model, _ = ctx.restore(tensors, meta, source="checkpoint")
        tokenizer = ctx.data.tokenizer
        rows = []
        for evaluation in missing:
            measured = suite.run(evaluation, model, tokenizer, ctx.device)
            rows += [
                {
                    "step_key": key,
                    "name": name,
                    "setting": evaluation.key,
                    "value": value,
                    "setting_json": evaluation.setting_json,
                    "seconds": measured.seconds,
                    "outcomes": measured.outcomes.get(name),
                }
                for name, value in measured.values.items()
            ]
            shown = ", ".join(f"{n} {v:.4g}" for n, v in measured.values.items())
            self.progress.message(
                f"{run.title}: {what} evaluated: {shown} ({measured.seconds:.1f} s)"
            )
        self.store.write_metrics(rows)
        self.evaluated += len(missing)
