"""The results database and checkpoint files: transactions, migrations, atomic writes."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from prunebench import checkpoints
from prunebench.errors import CheckpointError, StorageError
from prunebench.store import STEP_COLUMNS, Store


def step_row(run_id: str, step: int, **extra):
    return {"run_id": run_id, "step": step, "step_key": f"k{step}", "target": 0.1 * step, **extra}


def test_step_and_epochs_land_together_and_replace_a_previous_attempt(tmp_path):
    store = Store(tmp_path)
    store.start_run("r", {"regime": "one_shot"})
    epochs = [{"epoch": e, "train_loss": 1.0 / e} for e in (1, 2, 3)]
    store.write_step(step_row("r", 1, epochs=3), epochs)
    store.write_step(step_row("r", 1, epochs=2), epochs[:2])  # a retried step replaces
    assert [r["epochs"] for r in store.steps("r")] == [2]
    assert [e["epoch"] for e in store.epochs("r", 1)] == [1, 2]


def test_a_failed_write_leaves_nothing(tmp_path):
    store = Store(tmp_path)
    store.start_run("r", {})
    with pytest.raises(KeyError, match="no column 'bogus'"):
        store.write_step(step_row("r", 1), [{"epoch": 1}, {"epoch": 2, "bogus": 1}])
    assert store.steps("r") == []
    assert store.epochs("r", 1) == []


def test_reads_of_a_missing_database_write_nothing(tmp_path):
    store = Store(tmp_path / "none")
    assert store.run("x") is None and store.steps("x") == [] and store.step_by_key("k") is None
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


def test_step_by_key_prefers_the_computed_row(tmp_path):
    store = Store(tmp_path)
    store.write_step(step_row("copy", 1, reused=1), [])
    store.write_step(step_row("orig", 1, reused=0), [])
    assert store.step_by_key("k1")["run_id"] == "orig"


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
