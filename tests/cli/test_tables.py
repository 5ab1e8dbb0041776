"""The comparison table: final steps only, means over seeds, regimes in run order."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from prunebench.store.database import Store
from prunebench.store.results import load_results
from prunebench.tables import comparison_frame, final_steps


def add_run(store, run_id, regime, target, seed, finals, n_steps=2):
    store.start_run(
        run_id,
        {"regime": regime, "target": target, "seed": seed, "n_steps": n_steps, "metric": "top1"},
    )
    for step in range(1, n_steps + 1):
        top1, cum = finals if step == n_steps else (0.0, 1)
        row = {
            "run_id": run_id,
            "step": step,
            "step_key": f"{run_id}-{step}",
            "target": target * step / n_steps,
            "test_top1": top1,
            "cumulative_epochs": cum,
        }
        store.write_steps([(row, [])])
    store.finish_run(run_id, "done")


def test_comparison_uses_final_steps_and_seed_means(tmp_path):
    store = Store(tmp_path)
    add_run(store, "a0", "one_shot", 0.9, 0, (0.80, 10), n_steps=1)
    add_run(store, "a1", "one_shot", 0.9, 1, (0.90, 12), n_steps=1)
    add_run(store, "b0", "geometric", 0.9, 0, (0.95, 30))
    add_run(store, "b1", "geometric", 0.9, 1, (0.85, 34))
    store.start_run("c", {"regime": "constant", "target": 0.9, "n_steps": 3})  # unfinished
    df = load_results(tmp_path)
    assert len(final_steps(df)) == 4
    frame = comparison_frame(df)
    assert frame.loc[0.9, ("test", "one_shot")] == pytest.approx(0.85)
    assert frame.loc[0.9, ("epochs", "one_shot")] == 11
    assert frame.loc[0.9, ("test", "geometric")] == pytest.approx(0.90)
    assert frame.loc[0.9, ("epochs", "geometric")] == 32
    assert frame.loc[0.9, ("seeds", "geometric")] == 2
    assert "constant" not in frame.columns.get_level_values("label")


def add_described_run(store, run_id, seed, structure, criterion, target=0.9, name="geometric"):
    fields = {"name": name, "regime": "geometric", "target": target, "seed": seed, "n_steps": 1}
    store.start_run(
        run_id, {**fields, "structure": structure, "criterion": criterion, "metric": "top1"}
    )
    row = {"run_id": run_id, "step": 1, "step_key": f"k-{run_id}", "target": target}
    store.write_steps([({**row, "test_top1": 0.9, "cumulative_epochs": 3}, [])])
    store.finish_run(run_id, "done")


def listed(out: str) -> list[list[str]]:
    """The body rows of a printed rich table, as cells."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]


def test_results_table_identifies_runs_and_sorts_them(tmp_path, invoke):
    store = Store(tmp_path)
    add_described_run(store, "ffff0000aaaa", 1, "unstructured", "magnitude")
    add_described_run(store, "ffff0000bbbb", 0, "unstructured", "magnitude")  # shares 8 chars
    add_described_run(store, "1234abcd9999", 0, "structured", "taylor")
    add_described_run(store, "9999abcd1234", 0, "unstructured", "magnitude", target=0.5)
    code, out, _ = invoke("results", str(tmp_path))
    assert code == 0
    header = [line.strip("┃").split("┃") for line in out.splitlines() if line.startswith("┃")]
    titles = [
        " ".join(c.strip() for c in cells if c.strip()) for cells in zip(*header, strict=True)
    ]
    assert titles[:9] == [
        "run", "id", "seed", "structure", "criterion", "target", "status", "step", "step target",
    ]  # fmt: skip
    rows = listed(out)
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("1234abcd", "0", "structured", "taylor", "0.9"),
        ("9999abcd", "0", "unstructured", "magnitude", "0.5"),
        ("ffff0000b", "0", "unstructured", "magnitude", "0.9"),
        ("ffff0000a", "1", "unstructured", "magnitude", "0.9"),
    ]


def test_results_run_takes_an_id_prefix_and_refuses_unknown_ones(tmp_path, invoke):
    store = Store(tmp_path)
    add_described_run(store, "ffff0000aaaa", 1, "unstructured", "magnitude")
    add_described_run(store, "ffff0000bbbb", 0, "unstructured", "magnitude")
    code, out, _ = invoke("results", str(tmp_path), "--run", "ffff0000b", "--format", "csv")
    assert code == 0 and list(pd.read_csv(io.StringIO(out))["run_id"]) == ["ffff0000bbbb"]
    code, out, _ = invoke("results", str(tmp_path), "--run", "ffff0000aaaa")
    assert code == 0 and [r[1] for r in listed(out)] == ["ffff0000a"]
    code, out, err = invoke("results", str(tmp_path), "--run", "abc")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: no run 'abc' in these results; list them with `prunebench results`"
    ]
    code, _, err = invoke("results", str(tmp_path), "--run", "ffff")
    assert code == 2 and "ambiguous (2 runs)" in err
