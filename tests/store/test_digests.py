"""Every table a report or `results` reads carries row digests: any single REAL changed after it
was written is reported by `prunebench verify` (property test over tables, rows and columns)."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from prunebench.store.database import Store
from prunebench.store.digests import DIGESTED
from prunebench.store.example_outcomes import pack_correct
from prunebench.store.schema import TABLES
from prunebench.store.verify import verify

# the REAL columns of every table a report or `results` reads, but for timings (how long a step
# took is not a result: left out of digests so that a resumed and a lone run compare equal)
REALS = [
    (table, name)
    for table, (columns, left_out, _) in DIGESTED.items()
    for name, kind in columns.items()
    if kind == "REAL" and name not in left_out
]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Two runs with steps, epochs, per-example outcomes and evaluations, every REAL filled in."""
    root = tmp_path_factory.mktemp("digests")
    store = Store(root)
    reals = {t: [n for tt, n in REALS if tt == t] for t in DIGESTED}
    for r, rid in enumerate(("a", "b")):
        store.start_run(rid, {n: 0.5 + r + i / 7 for i, n in enumerate(reals["runs"])})
        for step in (1, 2):
            row = {n: step + i / 3 for i, n in enumerate(reals["steps"])}
            row |= {"run_id": rid, "step": step, "step_key": f"{rid}{step}", "seconds": 1.5}
            row["test_outcomes"] = pack_correct([True, False, True])
            epochs = [{"epoch": e, **{n: e / 9 for n in reals["epochs"]}} for e in (1, 2)]
            store.commit_step(f"{rid}{step}", ({"w": torch.zeros(1)}, {}), [(row, epochs)])
            evaluation = {n: step / 11 + r for n in reals["step_metrics"]}  # eval: of the step
            evaluation |= {"step_key": f"{rid}{step}", "name": "task/acc", "setting": "s"}
            store.write_metrics([evaluation])
        store.finish_run(rid, "done")
    return root


def test_every_table_a_report_reads_is_digested():
    assert {"runs", "steps", "epochs", "step_metrics"} == set(DIGESTED)
    assert all("digest" in TABLES[t][0] for t in DIGESTED)
    assert len({t for t, _ in REALS}) == 4


def test_a_sound_directory_passes(results):
    assert verify(results).problems == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    column=st.sampled_from(REALS),
    row=st.integers(0, 7),
    value=st.floats(allow_nan=False, allow_infinity=True, width=64),
)
def test_any_single_real_edited_in_any_table_is_reported(results, column, row, value):
    table, name = column
    with tempfile.TemporaryDirectory() as where:
        copy = Path(where) / "r"
        shutil.copytree(results, copy)
        con = sqlite3.connect(copy / "results.sqlite")
        rowids = [r for (r,) in con.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
        rowid = rowids[row % len(rowids)]
        (old,) = con.execute(f"SELECT {name} FROM {table} WHERE rowid=?", (rowid,)).fetchone()
        assume(repr(float(value)) != repr(old))
        con.execute(f"UPDATE {table} SET {name}=? WHERE rowid=?", (value, rowid))
        con.commit()
        con.close()
        found = verify(copy)
        assert found.problems == 1, found.lines
        assert any("do not match their digest" in line for line in found.lines)


def test_a_flipped_bit_in_per_example_outcomes_is_reported(results, tmp_path):
    copy = tmp_path / "r"
    shutil.copytree(results, copy)
    con = sqlite3.connect(copy / "results.sqlite")
    con.execute("UPDATE steps SET test_outcomes=? WHERE run_id='b' AND step=2",
                (pack_correct([True, True, True]),))  # fmt: skip
    con.commit()
    con.close()
    found = verify(copy)
    assert found.problems == 1
    assert any("run b step 2" in line for line in found.lines)
