"""MLflow: one parent run per sweep, one (nested) run per prunebench run.

Params are the flattened resolved config; tags name the regime, criterion, structure, seed,
target, model and dataset; metrics are those of `base.py`. Each step's metrics go in one
`log_batch` together with the tag `prunebench.logged_steps` (the steps the run holds), which is
how a resumed sweep knows what not to log again. An evaluation's metrics go in one `log_batch`
with the tag `prunebench.logged_evals.<setting digest>` (the steps evaluated under that
setting that the run holds, 0 for the dense model), to the run even when it has finished
(MLflow takes metrics for a finished run; its status stays). Runs are found again by the tags
`prunebench.results_id` (the results directory) and `prunebench.run_id` / `prunebench.sweep_id`.

The default destination is a file store (`mlruns/` in the results directory). MLflow 3 keeps
file stores in maintenance mode and refuses them unless MLFLOW_ALLOW_FILE_STORE is set: it is
set here, for file stores only, unless the user set it. A server (`http://...`) or a database
(`sqlite:///...`, which needs the full `mlflow` package) works as MLflow documents.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from prunebench.tracking.base import EvalRecord, RunInfo, Session, StepRecord
from prunebench.tracking.spec import is_local, local_path

DEFAULT_EXPERIMENT = "prunebench"
MAX_METRICS, MAX_PARAMS = 900, 100  # MLflow's log_batch takes at most 1000 metrics, 100 params
STATUS = {"done": "FINISHED", "failed": "FAILED", "running": "RUNNING"}
EVALS_TAG = "prunebench.logged_evals."  # + the setting's digest: the steps held, e.g. "0,2"


def tracking_uri(location: str) -> str:
    """A path becomes a file: URI (absolute); any other URI is used as given."""
    if is_local(location):
        return local_path(location).absolute().as_uri()
    return location


def results_id(results: str) -> str:
    return hashlib.sha256(str(results).encode()).hexdigest()[:16]


def _client(uri: str):
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    # A dead server must not hold the tracking thread for minutes (MLflow retries 7 times).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment(client, name: str | None) -> str:
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    return client.create_experiment(name)


def _search(client, experiment_id: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowTracker:
    name = "mlflow"

    def __init__(self, location: str, experiment: str | None = None) -> None:
        self.uri = tracking_uri(location)
        self.experiment = experiment
        self.client: Any = None
        self.parent: str | None = None
        self._ids: dict[str, str] = {}  # prunebench run id -> MLflow run id
        self._tags: dict[str, dict[str, str]] = {}  # prunebench run id -> its tags when found

    def open(self, session: Session) -> None:
        self.client = _client(self.uri)
        self.experiment_id = _experiment(self.client, self.experiment)
        self.results_tags = {
            "prunebench.results": session.results,
            "prunebench.results_id": results_id(session.results),
        }
        mine = f"tags.`prunebench.results_id` = '{results_id(session.results)}'"
        self._existing: dict[str, Any] = {}
        for run in _search(self.client, self.experiment_id, mine):
            tags = run.data.tags
            kind = tags.get("prunebench.kind")
            if kind == "run":
                self._existing.setdefault(tags.get("prunebench.run_id"), run)
            elif (
                kind == "sweep" and session.sweep and tags.get("prunebench.sweep_id") == session.key
            ):
                self.parent = self.parent or run.info.run_id
        if session.sweep is None:
            return
        if self.parent is None:
            tags = {
                **self.results_tags,
                "prunebench.kind": "sweep",
                "prunebench.sweep_id": session.key,
            }
            self.parent = self.client.create_run(
                self.experiment_id, run_name=session.sweep, tags=tags
            ).info.run_id
        else:
            self.client.update_run(self.parent, status="RUNNING")

    def start_run(self, run: RunInfo) -> set[int]:
        found = self._existing.get(run.run_id)
        if found is not None:
            self._ids[run.run_id] = found.info.run_id
            self._tags[run.run_id] = dict(found.data.tags)
            if found.info.status != "RUNNING" and run.status == "running":
                self.client.update_run(found.info.run_id, status="RUNNING")
            if self.parent is not None and "mlflow.parentRunId" not in found.data.tags:
                self.client.set_tag(found.info.run_id, "mlflow.parentRunId", self.parent)
            held = found.data.tags.get("prunebench.logged_steps", "")
            return {int(s) for s in held.split(",") if s}
        tags = {**run.tags, **self.results_tags, "prunebench.kind": "run"}
        if self.parent is not None:
            tags["mlflow.parentRunId"] = self.parent
        created = self.client.create_run(self.experiment_id, run_name=run.label, tags=tags)
        mid = self._ids[run.run_id] = created.info.run_id
        from mlflow.entities import Metric, Param

        params = [Param(k, v[:6000]) for k, v in sorted(run.params.items())]
        for i in range(0, len(params), MAX_PARAMS):
            self.client.log_batch(mid, params=params[i : i + MAX_PARAMS])
        now = _now_ms()
        dense = [Metric(k, v, now, 0) for k, v in run.dense.items()]
        if dense:
            self.client.log_batch(mid, metrics=dense)
        return set()

    def log_step(self, run: RunInfo, record: StepRecord, logged: set[int]) -> None:
        from mlflow.entities import Metric, RunTag

        now = _now_ms()
        metrics = [
            Metric(k, v, now, epoch)
            for epoch, values in record.epoch_metrics()
            for k, v in values.items()
        ]
        metrics += [Metric(k, v, now, record.step) for k, v in record.step_metrics().items()]
        held = RunTag("prunebench.logged_steps", ",".join(str(s) for s in sorted(logged)))
        tags = [held] + ([RunTag("prunebench.reused", "1")] if record.row.get("reused") else [])
        self._log_batches(self._ids[run.run_id], metrics, tags)

    def _log_batches(self, mid: str, metrics: list[Any], tags: list[Any]) -> None:
        """`metrics` in batches MLflow takes; `tags` (what the run holds) with the last one, so
        they say so only once every metric is there."""
        chunks = [metrics[i : i + MAX_METRICS] for i in range(0, len(metrics), MAX_METRICS)]
        for chunk in chunks[:-1]:
            self.client.log_batch(mid, metrics=chunk)
        self.client.log_batch(mid, metrics=chunks[-1] if chunks else [], tags=tags)

    def held_evaluations(self, run: RunInfo) -> set[tuple[int, str]]:
        tags = self._tags.get(run.run_id, {})
        return {
            (int(step), key.removeprefix(EVALS_TAG))
            for key, steps in tags.items()
            if key.startswith(EVALS_TAG)
            for step in steps.split(",")
            if step
        }

    def log_evaluation(self, run: RunInfo, record: EvalRecord, held: set[tuple[int, str]]) -> None:
        from mlflow.entities import Metric, RunTag

        now = _now_ms()
        metrics = [Metric(k, v, now, record.step) for k, v in record.metrics().items()]
        steps = sorted(step for step, setting in held if setting == record.setting)
        tag = RunTag(EVALS_TAG + record.setting, ",".join(str(s) for s in steps))
        self._log_batches(self._ids[run.run_id], metrics, [tag])

    def finish_run(self, run: RunInfo, status: str, error: str | None) -> None:
        mid = self._ids[run.run_id]
        if error:
            self.client.set_tag(mid, "prunebench.error", error[:5000])
        self.client.set_terminated(mid, STATUS.get(status, "FAILED"))

    def close(self, failed: bool) -> None:
        if self.parent is not None:
            self.client.set_terminated(self.parent, "FAILED" if failed else "FINISHED")


def log_report(location: str, results: Path, files: list[Path]) -> str:
    """Attach a written report's files (report.html, report.md, figures) to the results directory's latest sweep run in
    MLflow, or to a run named 'report' when no sweep was logged; returns the MLflow run id."""
    client = _client(tracking_uri(location))
    experiment_id = _experiment(client, None)
    rid = results_id(str(results))
    runs = _search(client, experiment_id, f"tags.`prunebench.results_id` = '{rid}'")
    kinds = [r.data.tags.get("prunebench.kind") for r in runs]
    found = [r for r, k in zip(runs, kinds, strict=True) if k == "sweep"] or [
        r for r, k in zip(runs, kinds, strict=True) if k == "report"
    ]
    if found:
        target = max(found, key=lambda r: r.info.start_time).info.run_id
    else:
        tags = {
            "prunebench.results": str(results),
            "prunebench.results_id": rid,
            "prunebench.kind": "report",
        }
        target = client.create_run(experiment_id, run_name="report", tags=tags).info.run_id
        client.set_terminated(target, "FINISHED")
    top = files[0].parent
    for file in files:
        folder = file.parent.relative_to(top) if file.parent.is_relative_to(top) else Path()
        client.log_artifact(target, str(file), artifact_path=str(Path("report") / folder))
    return target
