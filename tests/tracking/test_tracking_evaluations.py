"""The evaluations of `eval:` reach MLflow and TensorBoard: `eval/NAME` at the pruning step and
`dense_eval/NAME` at 0, equal to the stored rows read back with each tool's own reader; logged
once across invocations, caught up when --log comes later, and to runs that finished already."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prunebench.config.identity import base_id, run_id
from prunebench.config.loading import load_run_config
from prunebench.data.synthetic_stories import generate_stories
from prunebench.engine.single_run import run
from prunebench.store.database import Store
from prunebench.store.metrics import dense_key
from prunebench.store.results import load_results
from prunebench.tracking import mlflow_tracker
from sweep_helpers import one_torch_thread
from tiny_lm_configs import STORIES_RUN

pytest.importorskip("mlflow", reason="the tracking extra is not installed: pip install '.[track]'")
pytest.importorskip("tensorboard", reason="the tracking extra is not installed")

from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = STORIES_RUN


@pytest.fixture(autouse=True)
def file_store(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run without eval: and without --log (each test works on a copy)."""
    root = tmp_path_factory.mktemp("trained") / "res"
    with one_torch_thread():
        assert run(load_run_config(None, BASE), Store(root)).computed == 2
    return root


@pytest.fixture
def results(trained, tmp_path):
    copy = tmp_path / "res"
    shutil.copytree(trained, copy)
    return copy


def config(tmp_path, every_step: bool = False):
    text = tmp_path / "story.txt"
    if not text.exists():
        text.write_text("\n".join(generate_stories(30, seed=7)))
    ppl = f"{{file: {text}, context: 16, stride: 8}}"
    return load_run_config(None, [*BASE, f"eval={{perplexity: {ppl}, every_step: {every_step}}}"])


def log(results: Path) -> list[str]:
    return [f"mlflow={results / 'mlruns'}", f"tensorboard={results / 'tb'}"]


def stored(results: Path) -> dict[str, list[tuple[int, float]]]:
    """The stored evaluations of the run, read from the database: metric -> [(step, value)]."""
    store = Store(results)
    rid = run_id(load_run_config(None, BASE))
    steps = {s["step_key"]: s["step"] for s in store.steps(rid)}
    dense = dense_key(base_id(load_run_config(None, BASE)))
    out: dict[str, list[tuple[int, float]]] = {}
    for m in store.step_metrics():
        if m["step_key"] == dense:
            out.setdefault(f"dense_eval/{m['name']}", []).append((0, m["value"]))
        elif m["step_key"] in steps:
            out.setdefault(f"eval/{m['name']}", []).append((steps[m["step_key"]], m["value"]))
    return {k: sorted(v) for k, v in out.items()}


def in_mlflow(results: Path) -> tuple[str, dict[str, list[tuple[int, float]]]]:
    """The run's status and its eval metrics' full histories, read with MLflow's client."""
    client = MlflowClient(tracking_uri=(results / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("prunebench")
    (found,) = client.search_runs([experiment.experiment_id])
    keys = [k for k in found.data.metrics if k.startswith(("eval/", "dense_eval/"))]
    histories = {
        k: sorted((m.step, m.value) for m in client.get_metric_history(found.info.run_id, k))
        for k in keys
    }
    return found.info.status, histories


def in_tensorboard(results: Path) -> dict[str, list[tuple[int, float]]]:
    (directory,) = (results / "tb").iterdir()
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    acc.Reload()
    tags = [t for t in acc.Tags()["scalars"] if t.startswith(("eval/", "dense_eval/"))]
    return {t: sorted((e.step, e.value) for e in acc.Scalars(t)) for t in tags}


def assert_logged_once(results: Path, expected: dict[str, list[tuple[int, float]]]) -> None:
    status, mlflow = in_mlflow(results)
    assert status == "FINISHED"
    assert mlflow == expected
    tensorboard = in_tensorboard(results)  # float32 there
    assert {k: [s for s, _ in v] for k, v in tensorboard.items()} == {
        k: [s for s, _ in v] for k, v in expected.items()
    }
    for key, values in expected.items():
        assert [v for _, v in tensorboard[key]] == pytest.approx([v for _, v in values], rel=1e-6)


@pytest.mark.slow  # trains a run: ~6 s
def test_evaluations_computed_with_the_run_reach_both_trackers_after_it_finished(tmp_path):
    results = tmp_path / "res"
    outcome = run(config(tmp_path), Store(results), log=log(results))
    assert outcome.status == "done" and outcome.computed == 2
    expected = stored(results)
    assert set(expected) == {"eval/story/ppl", "dense_eval/story/ppl"}
    assert [s for s, _ in expected["eval/story/ppl"]] == [2]  # the final step only
    shown = load_results(results).sort_values("step")["eval.story/ppl"].iloc[-1]
    assert expected["eval/story/ppl"][0][1] == pytest.approx(shown)
    assert_logged_once(results, expected)


@pytest.mark.slow  # three invocations: ~6 s
def test_eval_added_to_a_finished_run_is_logged_once_with_its_steps(tmp_path, results):
    cfg = config(tmp_path, every_step=True)
    for _ in range(2):  # the same command again logs nothing new
        assert run(cfg, Store(results), log=log(results)).computed == 0
        expected = stored(results)
        assert [s for s, _ in expected["eval/story/ppl"]] == [1, 2]
        assert_logged_once(results, expected)
    # the steps themselves were caught up too (the run was computed without --log)
    client = MlflowClient(tracking_uri=(results / "mlruns").as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("prunebench").experiment_id])
    assert found.data.tags["prunebench.logged_steps"] == "1,2"
    # a changed text file is a new setting: its evaluation (the final step's) is logged too
    text = tmp_path / "story.txt"
    text.write_text(text.read_text() + " the end")
    run(config(tmp_path), Store(results), log=log(results))
    expected = stored(results)
    assert [s for s, _ in expected["eval/story/ppl"]] == [1, 2, 2]
    assert_logged_once(results, expected)


@pytest.mark.slow  # three invocations: ~5 s
def test_log_later_catches_up_on_the_stored_evaluations(tmp_path, results):
    cfg = config(tmp_path)
    run(cfg, Store(results))  # evaluated without --log
    assert not (results / "mlruns").exists()
    expected = stored(results)
    for _ in range(2):
        assert run(cfg, Store(results), log=log(results)).computed == 0
        assert Store(results).step_metrics() and stored(results) == expected  # not recomputed
        assert_logged_once(results, expected)


def test_a_tracker_failing_on_evaluations_is_one_warning_and_they_stay_stored(
    tmp_path, results, monkeypatch, capsys
):
    def refuse(self, run, record, held):
        raise RuntimeError("server gone")

    monkeypatch.setattr(mlflow_tracker.MlflowTracker, "log_evaluation", refuse)
    outcome = run(config(tmp_path), Store(results), log=[f"mlflow={results / 'mlruns'}"])
    assert outcome.status == "done"
    assert set(stored(results)) == {"eval/story/ppl", "dense_eval/story/ppl"}
    warnings = [x for x in capsys.readouterr().err.splitlines() if x.startswith("warning:")]
    assert (
        len(warnings) == 1 and "mlflow logging stopped (RuntimeError: server gone)" in warnings[0]
    )
    monkeypatch.undo()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    run(config(tmp_path), Store(results), log=[f"mlflow={results / 'mlruns'}"])  # catches up
    assert in_mlflow(results) == ("FINISHED", stored(results))
