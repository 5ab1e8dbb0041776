"""Issue 23: chance-level detection. A model that cannot learn is flagged by `results`, the
report and `advise`, and no regime is recommended among collapsed runs."""

from __future__ import annotations

import textwrap
from collections import Counter

import pytest

from prunebench.config.loading import load_run_config
from prunebench.data.digits import build_digits
from prunebench.report.sanity import clearly_above_chance, collapsed_runs, sanity_warnings
from prunebench.store.results import load_results

BLIND_MODEL = """
from torch import nn


class Blind(nn.Module):
    '''Sees nothing of its input: it can only learn the class frequencies.'''

    def __init__(self, classes):
        super().__init__()
        self.fc = nn.Linear(4, classes)

    def forward(self, x):
        return self.fc(x.new_zeros(x.shape[0], 4))


def build(info):
    return Blind(info.num_classes)
"""


def test_clearly_above_chance_needs_a_margin():
    assert clearly_above_chance(0.30, 0.10) and not clearly_above_chance(0.11, 0.10)
    # at least 2 pp above chance, and a tenth of the way from chance to 100 %
    assert not clearly_above_chance(0.91, 0.90) and clearly_above_chance(0.93, 0.90)
    assert not clearly_above_chance(0.54, 0.50) and clearly_above_chance(0.56, 0.50)
    assert clearly_above_chance(50.0, 1000.0, higher_is_better=False)
    assert not clearly_above_chance(950.0, 1000.0, higher_is_better=False)


@pytest.mark.slow
def test_a_model_that_cannot_learn_is_flagged_and_never_recommended(tmp_path, invoke, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blind.py").write_text(textwrap.dedent(BLIND_MODEL))
    (tmp_path / "run.yaml").write_text(
        "device: cpu\nmodel: {name: 'python:blind.py:build'}\n"
        "pretrain: {epochs: 2}\nfinetune: {max_epochs: 1}\nregime: {target: 0.5}\n"
    )
    code, _, err = invoke("run", "run.yaml", "-r", "r", "-q")
    assert code == 0, err
    df = load_results(tmp_path / "r")
    data = build_digits(load_run_config(None, []).data, "cpu")
    labels = Counter(int(y) for _, ys in data.test for y in ys)
    majority = max(labels.values()) / sum(labels.values())
    assert df["chance_metric"].iloc[0] == pytest.approx(majority)
    assert set(collapsed_runs(df)) == set(df["run_id"])
    assert any("is not clearly above chance" in w for w in sanity_warnings(df))
    code, _, err = invoke("results", "r")
    assert code == 0 and "collapsed to chance" in err and "not clearly above chance" in err
    code, out, _ = invoke("advise", "r")
    assert code == 0 and "no regime is recommended" in out and "warning: the dense model" in out
    code, out, err = invoke("report", "r")
    assert code == 0, err
    assert "WARNING: the dense model" in (tmp_path / "r" / "report" / "report.md").read_text()
