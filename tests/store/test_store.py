"""The results database and checkpoint files: transactions, migrations, atomic writes."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from prunebench.errors import CheckpointError, DamagedDatabase, StorageError
from prunebench.store import checkpoints
from prunebench.store.connection import Database
from prunebench.store.database import Store
from prunebench.store.digests import digest_ok, row_digest
from prunebench.store.schema import STEP_COLUMNS


def step_row(run_id: str, step: int, **extra):
    return {"run_id": run_id, "step": step, "step_key": f"k{step}", "target": 0.1 * step, **extra}


def test_step_and_epochs_land_together_and_replace_a_previous_attempt(tmp_path):
    store = Store(tmp_path)
    store.start_run("r", {"regime": "one_shot"})
    epochs = [{"epoch": e, "train_loss": 1.0 / e} for e in (1, 2, 3)]
    store.write_steps([(step_row("r", 1, epochs=3), epochs)])
    store.write_steps([(step_row("r", 1, epochs=2), epochs[:2])])  # a retried step replaces
    assert [r["epochs"] for r in store.steps("r")] == [2]
    assert [e["epoch"] for e in store.epochs("r", 1)] == [1, 2]


def test_a_failed_write_leaves_nothing(tmp_path):
    store = Store(tmp_path)
    store.start_run("r", {})
    with pytest.raises(KeyError, match="no column 'bogus'"):
        store.write_steps([(step_row("r", 1), [{"epoch": 1}, {"epoch": 2, "bogus": 1}])])
    assert store.steps("r") == []
    assert store.epochs("r", 1) == []
    with pytest.raises(KeyError, match="runs has no column 'bogus'"):
        store.update_run("r", {"status": "done", "bogus": 1})
    assert store.run("r")["status"] == "running"


def test_reads_of_a_missing_database_write_nothing(tmp_path):
    store = Store(tmp_path / "none")
    assert store.run("x") is None and store.steps("x") == [] and store.stored_steps() == {}
    assert not (tmp_path / "none").exists()


def test_old_databases_gain_new_columns(tmp_path):
    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.execute("CREATE TABLE steps (run_id TEXT NOT NULL, step INTEGER NOT NULL, step_key TEXT)")
    con.execute("INSERT INTO steps VALUES ('old', 1, 'k')")
    con.commit()
    con.close()
    store = Store(tmp_path)
    assert store.steps("old")[0]["speedup"] is None
    assert set(STEP_COLUMNS) <= set(store.steps("old")[0])


def test_a_stored_step_is_its_computed_row_whoever_copied_it(tmp_path):
    store = Store(tmp_path)
    state = ({"w": torch.zeros(2)}, {})
    store.commit_step("k1", state, [(step_row("orig", 1, reused=0), [])])
    store.write_steps([(step_row("copy", 1, reused=1), [])])  # a later run's copy
    assert store.stored_steps()["k1"]["run_id"] == "orig"
    assert store.stored_steps(["k1"])["k1"]["run_id"] == "orig"
    assert sorted(r["run_id"] for r in store.rows_of("k1")) == ["copy", "orig"]


def test_checkpoint_roundtrip_and_metadata(tmp_path):
    path = tmp_path / "c.safetensors"
    tensors = {"w": torch.randn(3, 4), "mask::w": torch.rand(3, 4) > 0.5}
    checkpoints.save_tensors(path, tensors, {"step": 2})
    loaded, meta = checkpoints.load_tensors(path)
    assert meta == {"step": 2}
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)


def test_interrupted_checkpoint_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    checkpoints.save_tensors(path, {"w": torch.zeros(2)}, {"v": 1})

    def crash(*args, **kwargs):
        with open(args[1], "wb") as handle:  # half a file, then the process "dies"
            handle.write(b"\x00" * 10)
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "save_file", crash)
    with pytest.raises(StorageError, match="disk full"):
        checkpoints.save_tensors(path, {"w": torch.ones(2)}, {"v": 2})
    loaded, meta = checkpoints.load_tensors(path)
    assert meta == {"v": 1} and torch.equal(loaded["w"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_corrupt_checkpoint_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        checkpoints.load_tensors(path)


def test_pth_state_dict_is_read_without_pickle(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"a": torch.ones(2)}, path)
    assert torch.equal(checkpoints.read_state_dict(path)["a"], torch.ones(2))


def test_every_row_gets_a_digest_that_a_changed_value_breaks(tmp_path):
    store = Store(tmp_path)
    store.write_steps([(step_row("r", 1, test_loss=0.0882, test_top1=float("nan"), epochs=3), [])])
    row = store.steps("r")[0]
    assert row["test_top1"] is None  # SQLite stores NaN as NULL: the digest is of what it keeps
    assert row["digest"] == row_digest(row) and digest_ok(row) is True
    assert store.row_check().bad == []
    con = sqlite3.connect(store.db_path)
    con.execute("UPDATE steps SET test_loss=0.01")
    con.commit()
    con.close()
    assert digest_ok(store.steps("r")[0]) is False
    assert store.row_check().bad == [("r", 1)]
    assert store.stored_steps() == {}  # a step whose only row fails is not stored


def test_a_column_added_later_keeps_digests_and_bytes_count_by_their_hash(tmp_path, monkeypatch):
    Store(tmp_path).write_steps([(step_row("old", 1, epochs=1), [])])
    monkeypatch.setitem(STEP_COLUMNS, "outcomes", "BLOB")  # what a later version may add
    store = Store(tmp_path)
    assert digest_ok(store.steps("old")[0]) is True  # NULL in the new column: same digest
    store.write_steps([(step_row("new", 1, outcomes=b"\x01\x00\x01"), [])])
    assert digest_ok(store.steps("new")[0]) is True
    con = sqlite3.connect(store.db_path)
    con.execute("UPDATE steps SET outcomes=? WHERE run_id='new'", (b"\x01\x01\x01",))
    con.commit()
    con.close()
    assert store.row_check().bad == [("new", 1)]


def test_a_full_database_is_a_storage_error_with_nothing_written(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.write_steps([(step_row("r", 1), [])])
    opened = Database._open

    def capped(self):  # SQLite's own "database or disk is full", as on a full disk
        con = opened(self)
        con.execute(f"PRAGMA max_page_count={con.execute('PRAGMA page_count').fetchone()[0]}")
        return con

    monkeypatch.setattr(Database, "_open", capped)
    epochs = [{"epoch": e, "train_loss": float(e)} for e in range(1, 400)]
    with pytest.raises(StorageError, match="database or disk is full"):
        store.write_steps([(step_row("r", 2, created_at="x" * 5000), epochs)])
    monkeypatch.setattr(Database, "_open", opened)
    assert [r["step"] for r in store.steps("r")] == [1] and store.epochs("r", 2) == []


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_a_damaged_database_is_one_line_for_every_read(tmp_path, damage):
    store = Store(tmp_path)
    for step in range(1, 40):
        store.write_steps([(step_row("r", step, created_at="x" * 200), [{"epoch": 1}])])
    data = store.db_path.read_bytes()
    cut = data[: len(data) // 2] if damage == "truncated" else b"\xff" * 100 + data[100:]
    store.db_path.write_bytes(cut)
    fresh = Store(tmp_path)
    for read in (fresh.runs, lambda: fresh.steps("r"), fresh.steps_with_runs, fresh.row_check):
        with pytest.raises(
            DamagedDatabase, match=r"results.sqlite is damaged: .*prunebench verify"
        ):
            read()


def test_a_changed_epoch_row_keeps_only_its_own_step_from_being_resumed(tmp_path):
    store = Store(tmp_path)
    store.start_run("r", {})
    for step in (1, 2):
        store.write_steps([(step_row("r", step), [{"epoch": 1, "val_loss": 0.5}])])
    con = sqlite3.connect(store.db_path)
    con.execute("UPDATE epochs SET val_loss=7.5 WHERE step=2")
    con.commit()
    con.close()
    for keys, flagged in ((["k2"], {"k2"}), (["k1"], set()), (None, {"k2"})):
        damaged: dict[str, str] = {}
        store.stored_steps(keys, damaged)
        assert set(damaged) == flagged, keys


def test_step_metrics_of_some_keys_reads_only_theirs(tmp_path):
    store = Store(tmp_path)
    rows = [
        {"step_key": k, "name": n, "setting": s, "value": v, "setting_json": "{}", "seconds": 0.0}
        for k, n, s, v in [
            ("a", "ppl", "s1", 1.0),
            ("b", "ppl", "s1", 2.0),
            ("c", "acc", "s2", 3.0),
        ]
    ]
    store.write_metrics(rows)
    assert {(r["step_key"], r["value"]) for r in store.step_metrics()} == {
        ("a", 1.0),
        ("b", 2.0),
        ("c", 3.0),
    }
    assert sorted((r["step_key"], r["value"]) for r in store.step_metrics(["c", "a", "a"])) == [
        ("a", 1.0),
        ("c", 3.0),
    ]
    assert store.step_metrics([]) == []
    assert store.evaluated(iter(["b", "c", "z"])) == {("b", "s1"), ("c", "s2")}
