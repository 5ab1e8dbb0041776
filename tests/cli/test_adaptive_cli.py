"""`regime: adaptive` from the command line on tiny digits: schedule, dry run, sweep, results,
report."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from sweep_helpers import write_sweep


def test_schedule_prints_the_rule_and_its_range_of_steps(invoke):
    code, out, _ = invoke("schedule", "adaptive", "--target", "0.9")
    assert code == 0
    assert "first cut: 0.7 x the target = 0.63" in out and "4 to 25 steps" in out
    assert "adaptive: 7 steps" in out and "0.900000" in out
    code, out, _ = invoke(
        "schedule", "adaptive", "--target", "0.9", "--adaptive", "rate=0.3,retry=true", "--json"
    )
    data = json.loads(out)
    assert data["rule"]["rate"] == 0.3 and data["rule"]["retry"] is True
    assert data["cumulative"][0] == 0.63 and data["cumulative"][-1] == 0.9
    code, _, err = invoke("schedule", "adaptive", "--target", "0.9", "--adaptive", "grow=0.5")
    assert code == 2 and "adaptive.grow must be >= 1" in err and "Traceback" not in err


@pytest.mark.slow
def test_an_adaptive_sweep_from_dry_run_to_report(invoke, tmp_path):
    sweep = write_sweep(
        tmp_path / "sweep.yaml",
        cases=[
            {"regime": {"name": "one_shot"}},
            {"regime": {"name": "adaptive", "adaptive": {"rate": 0.4}}},
        ],
        grid={"regime.target": [0.6], "seed": [0, 1]},
    )
    results = tmp_path / "r"
    code, out, _ = invoke("sweep", str(sweep), "--results", str(results), "--dry-run")
    assert code == 0 and "adaptive runs: 2" in out
    assert not results.exists()  # a dry run writes nothing

    code, out, err = invoke("sweep", str(sweep), "--results", str(results), "--quiet")
    assert code == 0, err

    code, out, _ = invoke("results", str(results), "--format", "csv")
    frame = pd.read_csv(io.StringIO(out))
    adaptive = frame[frame["regime"] == "adaptive"].sort_values(["seed", "step"])
    for _, run in adaptive.groupby("run_id"):
        assert run["target"].iloc[-1] == 0.6 and run["rule"].iloc[0] == "first cut"
        assert run["target"].iloc[0] == pytest.approx(0.42)
        assert run["rule_rate"].notna().all() and set(run["rule"]) <= {
            "first cut", "grow", "hold", "shrink", "no drop"
        }  # fmt: skip
    assert frame[frame["regime"] == "one_shot"]["rule"].isna().all()
    code, out, _ = invoke("results", str(results))
    assert code == 0 and "first cut" in out and "rule" in out

    code, out, err = invoke("report", str(results))
    assert code == 0, err
    markdown = (results / "report" / "report.md").read_text()
    assert "Adaptive runs: the steps their rule chose" in markdown
    assert "0.42 first cut" in markdown
