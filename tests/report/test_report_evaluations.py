"""The evaluations of `eval:` in `results`, the report's table and as the reported metric
(`report --metric eval.NAME`), from a database with hand-chosen numbers."""

from __future__ import annotations

import pytest

from prunebench.errors import PrunebenchError
from prunebench.report.build import build_document, write_report
from prunebench.report.prepare import final_runs, reported_as
from prunebench.report.terminal import advise_decisions
from prunebench.store.database import Store
from prunebench.store.metrics import dense_key
from prunebench.store.results import load_results
from report_db import add_run, outcome_blob

ACC = {"one_shot": [0.40, 0.50], "geometric": [0.60, 0.70]}  # per seed, final step
PPL = {"one_shot": [30.0, 34.0], "geometric": [20.0, 22.0]}


DENSE = {"mcq/acc": 0.75, "wiki/ppl": 15.0}


def evaluated_database(root):
    """Two regimes x two seeds at 0.9, each final step with an accuracy and a perplexity, and
    their dense model (base0) with both."""
    store = Store(root)
    store.write_metrics(
        {"step_key": dense_key("base0"), "name": n, "setting": "s", "value": v}
        for n, v in DENSE.items()
    )
    for regime in ACC:
        for seed in (0, 1):
            rid = add_run(store, regime, 0.9, seed, 50.0 + seed, metric="ppl")
            final = max(store.steps(rid), key=lambda r: r["step"])["step_key"]
            store.write_metrics(
                {"step_key": final, "name": name, "setting": "s", "value": value}
                for name, value in (("mcq/acc", ACC[regime][seed]), ("wiki/ppl", PPL[regime][seed]))
            )
    return root


def test_results_show_each_final_step_evaluation(tmp_path, invoke):
    root = evaluated_database(tmp_path)
    df = load_results(root)
    finals = df.loc[df.groupby("run_id")["step"].idxmax()]
    assert sorted(finals["eval.mcq/acc"]) == sorted(ACC["one_shot"] + ACC["geometric"])
    assert df.loc[df["step"] < df["n_steps"], "eval.mcq/acc"].isna().all()
    assert set(df["dense_eval.wiki/ppl"]) == {DENSE["wiki/ppl"]}
    code, out, _ = invoke("results", str(root))
    assert code == 0
    assert "mcq/acc" in out and "wiki/ppl" in out


def test_the_report_lists_the_evaluations_and_can_decide_on_one(tmp_path):
    root = evaluated_database(tmp_path)
    results = load_results(root, outcomes=True)
    doc = build_document(results, "test")
    table = next(t for s in doc.sections for t in s.tables() if "Evaluations" in t.title)
    rows = {row[1]: row for row in table.rows}
    assert rows["geometric q=0.3"][4] == "65.00 ± 7.07"  # mean ± sd over the seeds, percent
    assert rows["one-shot"][5] == "32.00 ± 2.83"
    assert rows["dense"][3:] == ["1", "75.00", "15.00"]  # one dense model: no spread
    finals = final_runs(reported_as(results, "eval.mcq/acc"))
    assert sorted(finals["value"]) == sorted(ACC["one_shot"] + ACC["geometric"])
    assert set(finals["dense_value"]) == {DENSE["mcq/acc"]}
    files = write_report(root, tmp_path / "report", metric="eval.mcq/acc")
    text = files.markdown.read_text()
    assert "headline metric: test mcq/acc (%)" in text
    assert "+20.00 pp" in text  # geometric vs one-shot: (65 - 45) percentage points


def test_a_metric_not_evaluated_is_one_line(tmp_path, invoke):
    root = evaluated_database(tmp_path)
    code, _, err = invoke("report", str(root), "--metric", "eval.boolq/acc")
    assert code == 2
    assert "no evaluation 'eval.boolq/acc' in these results (eval.mcq/acc, eval.wiki/ppl)" in err
    assert not (root / "report").exists()
    with pytest.raises(PrunebenchError, match="no evaluation"):
        reported_as(load_results(root), "test_top1")


def test_a_name_evaluated_under_two_settings_shows_the_latest(tmp_path):
    root = evaluated_database(tmp_path)
    later, earlier = "2999-01-01T00:00:01+00:00", "2999-01-01T00:00:00+00:00"
    store = Store(root)
    store.write_metrics(  # written in this order, stamped the other way round
        {"step_key": dense_key("base0"), "name": "wiki/ppl", "setting": s, "value": v,
         "created_at": t}
        for s, v, t in (("new", 12.0, later), ("old", 99.0, earlier))
    )  # fmt: skip
    assert len(store.step_metrics([dense_key("base0")])) == 4  # both settings stay stored
    assert set(load_results(root)["dense_eval.wiki/ppl"]) == {12.0}


def test_advise_decides_on_an_evaluation_as_the_report_does(tmp_path, invoke):
    root = evaluated_database(tmp_path)
    code, out, _ = invoke("advise", str(root), "--metric", "eval.mcq/acc")
    assert code == 0, out
    header, decision = out.splitlines()[:2]
    assert header.endswith(", on eval.mcq/acc):")
    assert "geometric q=0.3 (65.00%, 10 epochs)" in decision  # the evaluation, not test top-1
    report = write_report(root, tmp_path / "report", metric="eval.mcq/acc").markdown.read_text()
    assert decision.strip() in report  # the report's own sentence
    code, _, err = invoke("advise", str(root), "--metric", "eval.boolq/acc")
    assert code == 2 and "no evaluation 'eval.boolq/acc' in these results" in err


@pytest.mark.parametrize(("metric", "values"), [("top1", ACC), ("ppl", PPL)])
def test_an_evaluation_with_outcomes_is_judged_as_the_test_metric_with_them(
    tmp_path, metric, values
):
    """An evaluation that stores per-example outcomes (right/wrong per document, NLL per
    window) is judged exactly as the test metric would be with the same outcomes: the same
    estimate, interval, method and verdict, counting its own examples' noise."""
    name = "mcq/acc" if metric == "top1" else "wiki/ppl"
    as_test, as_eval = Store(tmp_path / "test"), Store(tmp_path / "eval")
    for regime in values:
        for seed in (0, 1):
            value = values[regime][seed]
            blob = outcome_blob(metric, value, 40, f"{regime}-{seed}")
            add_run(as_test, regime, 0.9, seed, value, metric=metric, outcomes=blob)
            other = 0.5 if metric == "top1" else 50.0  # the test metric: not what is judged
            rid = add_run(as_eval, regime, 0.9, seed, other, metric=metric)
            final = max(as_eval.steps(rid), key=lambda r: r["step"])["step_key"]
            as_eval.write_metrics(
                [{"step_key": final, "name": name, "setting": "s", "value": value,
                  "outcomes": blob}]
            )  # fmt: skip
    (expected,) = advise_decisions(tmp_path / "test")[0][2]
    (got,) = advise_decisions(tmp_path / "eval", metric=f"eval.{name}")[0][2]
    assert got.deciding.method == "seeds x test examples" and got.deciding.examples == 40
    fields = ("estimate", "low", "high", "p", "outcome", "method", "examples")
    assert [getattr(got.deciding, f) for f in fields] == pytest.approx(
        [getattr(expected.deciding, f) for f in fields]
    )
    assert got.status == expected.status
