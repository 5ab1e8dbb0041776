"""The report from a small hand-made database: every section, and the numbers equal the database."""

from __future__ import annotations

import json
import sqlite3
import statistics
from pathlib import Path

import numpy as np
import pytest

from prunebench.report import build_document, write_report
from prunebench.report.prepare import final_runs
from prunebench.store.database import Store
from prunebench.store.results import load_results
from report_db import LABELS, add_run, sample_database


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = sample_database(tmp_path_factory.mktemp("results"))
    files = write_report(root, root / "out", figure_format="svg")
    return root, files


def expected_rows(root: Path, ratio: float) -> dict[tuple[str, str], dict]:
    """Independently of prunebench: final steps of finished runs, straight from SQLite."""
    con = sqlite3.connect(root / "results.sqlite")
    rows = con.execute(
        "SELECT r.regime, r.criterion, r.config_json, s.test_top1, s.test_top5, "
        "s.cumulative_epochs, s.compression_ratio FROM runs r JOIN steps s "
        "ON s.run_id = r.run_id AND s.step = r.n_steps "
        "WHERE r.status = 'done' AND abs(r.target - ?) < 1e-9",
        (ratio,),
    ).fetchall()
    groups: dict[tuple[str, str], dict] = {}
    for regime, criterion, config, top1, top5, epochs, compression in rows:
        cfg = json.loads(config)
        step = cfg["regime"]["step"] if regime == "constant" else None
        label = LABELS[(regime, cfg["finetune"]["patience"], step)]
        g = groups.setdefault((label, criterion), {"top1": [], "top5": [], "epochs": [], "c": []})
        g["top1"].append(top1)
        g["top5"].append(top5)
        g["epochs"].append(epochs)
        g["c"].append(compression)
    return groups


def pm(values: list[float], scale: float, digits: int) -> str:
    mean = f"{statistics.mean(values) * scale:.{digits}f}"
    if len(values) < 2:
        return mean
    return f"{mean} ± {statistics.stdev(values) * scale:.{digits}f}"


@pytest.mark.parametrize("ratio", [0.5, 0.9])
def test_table_numbers_equal_the_database(report, ratio):
    root, files = report
    table = next(
        t
        for t in files.document.section("tables").tables()
        if t.title.endswith(f"{100 * ratio:g} %")
    )
    expected = expected_rows(root, ratio)
    got = {(row[0], row[1]): row for row in table.rows}
    assert set(got) == set(expected)
    html = files.html.read_text()
    markdown = files.markdown.read_text()
    for key, g in expected.items():
        row = dict(zip(table.columns, got[key], strict=True))
        assert row["seeds"] == str(len(g["top1"]))
        assert row["top-1 (%)"] == pm(g["top1"], 100, 2)
        assert row["top-5 (%)"] == (pm(g["top5"], 100, 2) if g["top5"][0] is not None else "-")
        assert row["fine-tuning epochs"] == pm(g["epochs"], 1, 1)
        assert row["compression (×)"] == f"{statistics.mean(g['c']):.2f}"
        assert row["speed-up (×)"] == "-" and row["latency pruned / dense (ms)"] == "-"
        assert f"<td>{row['top-1 (%)']}</td>" in html
        assert f"| {row['top-1 (%)']} |" in markdown or f"**{row['top-1 (%)']}**" in markdown
    # best mean first and emphasised; the random baseline listed last
    assert table.highlight == {0}
    best = max(
        (k for k in expected if k[1] != "random"),
        key=lambda k: statistics.mean(expected[k]["top1"]),
    )
    assert tuple(table.rows[0][:2]) == best
    assert table.rows[-1][1] == "random"


def test_every_section_and_figure_is_present(report):
    root, files = report
    doc = files.document
    ids = [s.id for s in doc.sections]
    assert ids == [
        "overview",
        "comparison",
        "tables",
        "recommendation",
        "budget",
        "criteria",
        "hybrid",
        "ablation-patience",
        "ablation-step-size",
        "claims",
        "unfinished",
        "method",
    ]
    assert all(s.unavailable is None for s in doc.sections), doc.not_shown()
    names = {f.name for f in doc.figures()}
    expected = {
        "regime_comparison",
        "retraining_budget",
        "criteria",
        "hybrid",
        "ablation_patience",
        "ablation_step_size",
    }
    assert names == expected
    html = files.html.read_text()
    for name in expected:
        assert f"id='fig-{name}'" in html
        assert (root / "out" / "figures" / f"{name}.svg").read_text().startswith("<?xml")
        assert f"(figures/{name}.svg)" in files.markdown.read_text()
    assert html.count("data:image/png;base64,") == len(expected)
    assert "http://" not in html.replace("http://www.w3.org", "") and "<script" not in html
    assert "random-criterion" not in " ".join(doc.not_shown())


def test_unfinished_runs_are_listed_with_their_error(report):
    _, files = report
    table = files.document.section("unfinished").tables()[0]
    rows = {(r[1], r[4]): r for r in table.rows}
    assert rows[("geometric", "7")][5:] == [
        "failed",
        "1 of 2",
        "TrainingDiverged: loss is nan at epoch 2",
    ]
    assert rows[("hybrid", "8")][5:] == ["failed", "0 of 5", "OOM"]


def test_variants_and_main_configuration(report):
    root, files = report
    finals = final_runs(load_results(root))
    assert set(finals["label"]) == set(LABELS.values())
    overview = " ".join(files.document.section("overview").blocks[0].items)
    assert "geometric = geometric q=0.3 (patience=3)" in overview
    assert "constant = constant step=0.1" in overview


def final_bits(root: Path, label_sql: str, ratio: float) -> dict[int, np.ndarray]:
    """seed -> top-1 correct bits of the final step, straight from SQLite and numpy."""
    con = sqlite3.connect(root / "results.sqlite")
    rows = con.execute(
        "SELECT r.seed, s.test_outcomes FROM runs r JOIN steps s ON s.run_id = r.run_id "
        f"AND s.step = r.n_steps WHERE r.status = 'done' AND abs(r.target - ?) < 1e-9 AND {label_sql}",
        (ratio,),
    ).fetchall()
    # blob: 'PBO', version, kind, uint32 n, then the packed bits
    return {seed: np.unpackbits(np.frombuffer(blob[9:], np.uint8))[: int.from_bytes(blob[5:9], "little")]
            for seed, blob in rows}  # fmt: skip


def test_recommendation_prints_the_decisions(report):
    root, files = report
    sec = files.document.section("recommendation")
    table = sec.tables()[0]
    rows = {r[0]: dict(zip(table.columns, r, strict=True)) for r in table.rows}
    assert set(rows) == {"50 %", "90 %"}
    # 90 %: hybrid has the best mean (0.91); its closest rival of another regime is the
    # geometric patience=5 variant (0.9025), run with seeds 0 and 1 only: paired on those two.
    row = rows["90 %"]
    assert (row["recommended"], row["versus"]) == (
        "hybrid p_k=0.4 q=0.2",
        "geometric q=0.3 (patience=5)",
    )
    hybrid = final_bits(root, "r.regime = 'hybrid' AND r.criterion = 'magnitude'", 0.9)
    geo5 = final_bits(root, "json_extract(r.config_json, '$.finetune.patience') = 5", 0.9)
    paired = np.mean([hybrid[s].mean() - geo5[s].mean() for s in (0, 1)])
    assert paired == pytest.approx(0.005)  # (0.91 - 0.905 + 0.905 - 0.9) / 2
    assert row["difference (CI)"].startswith(f"{100 * paired:+.2f} pp, ")
    assert row["verdict"] == "inconclusive"
    # the sentences, in the table's order
    texts = sec.blocks[2].items
    assert texts[1].startswith(
        "At 90 %: hybrid p_k=0.4 q=0.2 (91.00%, 21 epochs) has the best mean"
    )
    assert "geometric q=0.3 (patience=5) (90.25%, 50 epochs)" in texts[1]


def test_missing_sections_say_why(tmp_path):
    store = Store(tmp_path)
    for seed in (0, 1):
        add_run(store, "one_shot", 0.5, seed, 0.9 + seed / 100)
    doc = build_document(load_results(tmp_path), "db")
    reasons = doc.not_shown()
    assert reasons == [
        "Retraining budget: no ratio where two regimes finished",
        "Criteria: only one criterion (magnitude) was run; add prune.criterion to the grid",
        "Hybrid vs one-shot vs iterative: no finished hybrid runs",
        "Patience ablation: no regime was run with two or more patience values at the same ratio",
        "Step-size ablation: no iterative regime was run with two or more step sizes at the same ratio",
        "Regime comparison: random-criterion baseline not shown: no random-criterion runs "
        "(add prune.criterion: random to the sweep)",
    ]
    recs = doc.section("recommendation").blocks[2].items
    assert recs == [
        "At 50 %: only one_shot was run: one-shot (90.50%, 10 epochs); nothing to compare."
    ]


def test_empty_database_gives_a_report_that_says_so(tmp_path):
    Store(tmp_path).frame("runs")  # creates the empty database
    files = write_report(tmp_path)
    assert files.html == tmp_path / "report" / "report.html"
    assert "no finished runs in the database" in files.html.read_text()


def test_hybrid_grid_whose_first_step_follows_the_target(tmp_path):
    """The paper's hybrid grids scale p_k with the target: one line per regime all the same."""
    store = Store(tmp_path)
    for seed in (0, 1):
        add_run(store, "hybrid", 0.5, seed, 0.95, extra=("regime.first=0.4",))
        add_run(store, "hybrid", 0.9, seed, 0.90, extra=("regime.first=0.6",))
        add_run(store, "hybrid", 0.9, seed, 0.80, extra=("regime.first=0.7",))
        add_run(store, "one_shot", 0.5, seed, 0.94)
        add_run(store, "one_shot", 0.9, seed, 0.85)
    doc = build_document(load_results(tmp_path), "db")
    overview = doc.section("overview").blocks[0].items[-1]
    assert overview.endswith(
        "hybrid = hybrid p_k=0.4 q=0.2 at 50 %, hybrid p_k=0.6 q=0.2 at 90 %; one_shot = one-shot."
    )
    fig = doc.section("comparison").figures()[0].figure
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "hybrid (best variant per ratio)" in legend
    claim = next(r for r in doc.section("claims").tables()[0].rows if r[0] == "Hybrid best or tied")
    # the seeds agree exactly and no per-example outcomes are stored: no interval to decide by
    assert claim[1:4] == ["inconclusive", "holds at 0 of 2 ratios, inconclusive at 2",
                          "seeds only (no per-example outcomes)"]  # fmt: skip


def test_two_setups_and_measured_latency(tmp_path):
    store = Store(tmp_path)
    for seed in (0, 1):
        add_run(store, "one_shot", 0.5, seed, 0.9)
        add_run(store, "one_shot", 0.5, seed, 0.8 + seed / 100, extra=("prune.structure=structured",),
                speedup=1.8, latency=(1.25 + seed / 10, 2.0), compression=1.9)  # fmt: skip
    doc = build_document(load_results(tmp_path), "db")
    ids = [s.id for s in doc.sections]
    assert ids[0] == "s1-overview" and "s2-tables" in ids and ids[-2:] == ["unfinished", "method"]
    structured = doc.section("s1-tables").title
    assert structured == "Results per pruning ratio — digits_cnn on digits, structured"
    row = dict(zip(doc.section("s1-tables").tables()[0].columns,
                   doc.section("s1-tables").tables()[0].rows[0], strict=True))  # fmt: skip
    assert row["latency pruned / dense (ms)"] == "1.30 / 2.00"  # mean of 1.25 and 1.35
    assert row["speed-up (×)"] == "1.80" and row["top-1 (%)"] == "80.50 ± 0.71"
    names = [f.name for f in doc.figures()]
    assert "s1-regime_comparison" in names and "s2-regime_comparison" in names


def test_settings_that_differ_only_between_criteria_stay_out_of_labels(tmp_path):
    store = Store(tmp_path)
    add_run(store, "one_shot", 0.5, 0, 0.9)
    add_run(
        store, "one_shot", 0.5, 0, 0.5, criterion="random", extra=("prune.calibration_samples=64",)
    )
    add_run(store, "geometric", 0.5, 0, 0.91, extra=("finetune.patience=2",))
    add_run(store, "geometric", 0.5, 0, 0.92, extra=("finetune.patience=4",))
    finals = final_runs(load_results(tmp_path))
    labels = set(zip(finals["criterion"], finals["label"], strict=True))
    assert labels == {
        ("magnitude", "one-shot"),
        ("random", "one-shot"),
        ("magnitude", "geometric q=0.3 (patience=2)"),
        ("magnitude", "geometric q=0.3 (patience=4)"),
    }
