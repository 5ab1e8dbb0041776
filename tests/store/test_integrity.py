"""Nothing wrong goes unnoticed: files against their sha256, rows against their digest, a
damaged database in one line, `prunebench verify`. Damage is recomputed, never used."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_config
from prunebench.config.identity import base_id, run_id
from prunebench.engine.single_run import run
from prunebench.store import checkpoints
from prunebench.store.database import Store

TIMING = {"seconds", "created_at"}
PROVENANCE = {"run_id", "reused"}
LEGACY = Path(__file__).parents[1] / "data" / "legacy"


def manual(*targets: float, extra: tuple[str, ...] = ()):
    listed = ", ".join(str(t) for t in targets)
    return tiny_config(f"regime={{name: manual, targets: [{listed}]}}", *extra)


LONG = (0.5, 0.7, 0.8)


def config_file(cfg, where: Path) -> str:
    """`cfg` as a YAML file for the CLI (the same run id)."""
    path = where / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return str(path)


def measured(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING | PROVENANCE} for r in rows]


def flip_signs(path: Path, count: int = 300) -> None:
    """The audit's damage: `count` weights change sign; the file stays valid safetensors."""
    tensors, meta = checkpoints.load_tensors(path)
    name = max(
        (k for k, v in tensors.items() if v.is_floating_point()), key=lambda k: tensors[k].numel()
    )
    flat = tensors[name].reshape(-1).clone()
    chosen = flat.nonzero().reshape(-1)[:count]
    flat[chosen] = -flat[chosen]
    tensors[name] = flat.reshape(tensors[name].shape)
    checkpoints.save_tensors(path, tensors, meta)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A results directory holding the 3-step manual run (computed once per module)."""
    root = tmp_path_factory.mktemp("clean") / "results"
    torch.set_num_threads(1)
    run(manual(*LONG), Store(root))
    return root


@pytest.fixture
def copy(clean, tmp_path):
    def make(name: str) -> Store:
        shutil.copytree(clean, tmp_path / name)
        return Store(tmp_path / name)

    return make


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_stored_epochs_counts_only_steps_stored_whole_with_their_epochs(copy):
    """What a dry run counts stored steps with: the stored rows' epochs, and no step whose
    checkpoint is missing or damaged (it would be computed again)."""
    store = copy("counted")
    rows = store.steps(run_id(manual(*LONG)))
    keys = [r["step_key"] for r in rows]
    assert len(rows) == 3 and all(r["epochs"] >= 1 for r in rows)
    expected = {r["step_key"]: r["epochs"] for r in rows}
    assert store.stored_epochs([*keys, "no-such-step"]) == expected
    store.checkpoint_path(keys[1]).unlink()
    flip_signs(store.checkpoint_path(keys[2]))
    assert store.stored_epochs(keys) == {keys[0]: expected[keys[0]]}


def test_a_checkpoint_with_flipped_signs_is_recomputed_not_resumed_from(copy, capsys):
    """A new run branching off after step 2 reads step 2's checkpoint: damaged, it is computed
    again (one warning) and the run's rows equal those it gets from an undamaged directory."""
    damaged, intact = copy("damaged"), copy("intact")
    key = damaged.steps(run_id(manual(*LONG)))[1]["step_key"]
    recorded = damaged.file_record("checkpoint", key)["sha256"]
    flip_signs(damaged.checkpoint_path(key))
    branch = manual(0.5, 0.7, 0.9)
    capsys.readouterr()
    repaired = run(branch, damaged)
    err = capsys.readouterr().err
    assert "does not match the sha256 recorded when it was written" in err
    assert "computing that step again" in err and str(damaged.checkpoint_path(key)) in err
    assert repaired.computed == 2 and repaired.reused == 1  # step 2 again, then step 3
    reference = run(branch, intact)
    assert reference.computed == 1 and reference.reused == 2
    assert measured(repaired.rows) == measured(reference.rows)
    # recomputing gives the very same file back (seeded from the key, on the CPU)
    assert checkpoints.sha256_file(damaged.checkpoint_path(key)) == recorded
    assert damaged.file_record("checkpoint", key)["sha256"] == recorded


def test_a_dense_model_with_flipped_signs_is_trained_again(copy, capsys):
    damaged, intact = copy("damaged"), copy("intact")
    cfg = tiny_config("regime={name: one_shot, target: 0.6}")
    bid = base_id(cfg)
    recorded = damaged.file_record("dense", bid)["sha256"]
    flip_signs(damaged.dense_path(bid))
    capsys.readouterr()
    repaired = run(cfg, damaged)
    err = capsys.readouterr().err
    assert "training the dense model again" in err and str(damaged.dense_path(bid)) in err
    reference = run(cfg, intact)
    assert measured(repaired.rows) == measured(reference.rows)
    dense = [k for k in damaged.run(repaired.run_id) if k.startswith("dense_")]
    assert {k: damaged.run(repaired.run_id)[k] for k in dense} == {
        k: intact.run(reference.run_id)[k] for k in dense
    }
    # trained again to the same weights (its metadata holds timings, so not the same bytes)
    assert damaged.file_record("dense", bid)["sha256"] != recorded
    again, _ = damaged.load_dense(bid)
    original, _ = intact.load_dense(bid)
    assert again.keys() == original.keys()
    assert all(torch.equal(again[k], original[k]) for k in again)


EDITS = {  # table -> (the edit, how verify names the row, what the rerun says)
    "steps": ("UPDATE steps SET test_loss=0.01 WHERE step=2", "step 2", "1 step rows do not"),
    "epochs": (
        "UPDATE epochs SET val_loss=7.5 WHERE step=2 AND epoch=1",
        "step 2 epoch 1",
        "1 step rows do",
    ),
    "runs": ("UPDATE runs SET target=0.95", "(its runs row)", "runs row of"),
}


@pytest.mark.parametrize("table", EDITS)
def test_a_rewritten_value_is_reported_by_verify_results_and_report_then_repaired(
    copy, invoke, tmp_path, table
):
    edit, named, rerun = EDITS[table]
    store = copy("results")
    rid = run_id(manual(*LONG))
    before = store.steps(rid), store.epochs(rid, 2), store.run(rid)
    con = sqlite3.connect(store.db_path)
    con.execute(edit)
    con.commit()
    con.close()

    code, out, _ = invoke("verify", str(store.root))
    assert code == 1
    assert (
        f"rows: 1 do not match their digest (changed after they were written): run {rid} {named}"
        in out
    )
    assert "verdict: 1 problem" in out
    for args in (
        ["results", str(store.root)],
        ["report", str(store.root), "-o", str(tmp_path / "rep")],
    ):
        code, out, err = invoke(*args)
        assert code == 0, err
        assert "do not match their digest" in err and f"run {rid} {named}" in err
        assert one_line(err)
    if table == "runs":  # an export builds the model from the config in the runs row
        code, _, err = invoke("export", str(store.root), str(tmp_path / "out"), "--run", rid[:8])
        assert code == 2 and one_line(err) and "does not match its digest" in err, err
        assert not (tmp_path / "out" / "weights.safetensors").exists()

    config = config_file(manual(*LONG), tmp_path)
    code, _, err = invoke("run", config, "-r", str(store.root), "--quiet")
    assert code == 0, err
    assert rerun in err and "digest" in err
    assert measured(store.steps(rid)) == measured(before[0])
    assert [e["val_loss"] for e in store.epochs(rid, 2)] == [e["val_loss"] for e in before[1]]
    assert store.run(rid)["target"] == before[2]["target"]
    code, out, _ = invoke("verify", str(store.root))
    assert code == 0 and "verdict: all sound" in out


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_a_damaged_database_is_one_line_everywhere(copy, invoke, tmp_path, damage):
    store = copy("results")
    data = store.db_path.read_bytes()
    if damage == "truncated":
        store.db_path.write_bytes(data[: len(data) // 2])
    else:
        store.db_path.write_bytes(bytes(b ^ 0x5A for b in data[:4096]) + data[4096:])
    for args in (
        ["results", str(store.root)],
        ["report", str(store.root), "-o", str(tmp_path / "rep")],
        ["run", config_file(manual(*LONG), tmp_path), "-r", str(store.root)],
        ["sweep", "configs/sweeps/demo.yaml", "-r", str(store.root), "--dry-run"],
    ):
        code, _, err = invoke(*args)
        assert code == 2, (args, err)
        assert "results.sqlite is damaged:" in err and "prunebench verify" in err, err
        assert one_line(err), err
    code, out, err = invoke("verify", str(store.root))
    assert code == 1 and "PROBLEM results.sqlite: damaged:" in out and not err


def test_verify_passes_a_sound_directory_and_lists_orphans(copy, invoke):
    store = copy("results")
    code, out, _ = invoke("verify", str(store.root))
    assert code == 0, out
    assert "integrity ok; 1 run (1 done), 3 step rows" in out
    epochs = sum(
        len(store.epochs(r["run_id"], r["step"])) for r in store.steps(store.runs()[0]["run_id"])
    )
    assert f"rows: {4 + epochs} match their digest (1 runs, 3 steps, {epochs} epochs)" in out
    assert "files: 3 checkpoints and 1 dense model match their sha256" in out
    assert out.strip().endswith("verdict: all sound")

    (store.root / "checkpoints" / "stray.safetensors").write_bytes(b"x")
    (store.root / "checkpoints" / ".abc.safetensors.77.tmp").write_bytes(b"x")
    some = next((store.root / "checkpoints").glob("*.safetensors"))
    with open(some, "r+b") as handle:  # one byte of a weight
        handle.seek(-3, 2)
        handle.write(b"\x7f")
    code, out, _ = invoke("verify", str(store.root))
    assert code == 1
    assert "orphans: 2 files nothing in the database refers to" in out
    assert "checkpoints/stray.safetensors" in out and ".abc.safetensors.77.tmp" in out
    assert "files: 1 do not match the sha256 recorded when they were written" in out
    assert f"checkpoints/{some.name}" in out
    assert "verdict: 3 problems" in out


def test_export_stops_on_a_damaged_checkpoint_naming_the_file(copy, invoke, tmp_path):
    store = copy("results")
    rid = run_id(manual(*LONG))
    path = store.checkpoint_path(store.steps(rid)[-1]["step_key"])
    flip_signs(path)
    code, _, err = invoke("export", str(store.root), str(tmp_path / "out"), "--run", rid[:8])
    assert code == 2 and one_line(err)
    assert str(path) in err and "does not match the sha256" in err and "again" in err
    assert not (tmp_path / "out" / "weights.safetensors").exists()


def test_an_earlier_versions_results_are_notes_then_hashed_on_first_read(tmp_path, invoke):
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY / "results", root)
    code, out, _ = invoke("verify", str(root))
    assert code == 0, out
    assert "rows: 13 not digested (5 epochs, 3 runs, 5 steps; written by an earlier" in out
    assert "files: 6 not hashed (written by an earlier version" in out
    one_shot = root / "checkpoints" / "0243fb48ce15454c.safetensors"  # its only step
    one_shot.write_bytes(one_shot.read_bytes()[:1000])  # unreadable: never hashed, recomputed
    code, out, err = invoke("sweep", str(LEGACY / "sweep.yaml"), "-r", str(root), "--quiet")
    assert code == 0, err
    assert "is not a readable safetensors file" in err and "computing that step again" in err
    assert "1 steps computed" in out
    code, out, _ = invoke("verify", str(root))
    assert code == 0, out
    assert "files: 5 checkpoints and 1 dense model match their sha256 (5 hashed on first" in out
    assert "rows: 2 match their digest (0 runs, 1 steps, 1 epochs)" in out  # the recomputed
    assert "rows: 11 not digested (4 epochs, 3 runs, 4 steps" in out  # never blessed afterwards


@pytest.mark.parametrize("damage", ["zero bytes", "a folder"])
def test_an_empty_or_unreadable_database_is_damaged_never_empty(copy, invoke, tmp_path, damage):
    """A crash or a full disk can leave a 0-byte results.sqlite: SQLite would open it as a new
    database; it is damaged, and the checkpoints beside it are never called safe to delete."""
    store = copy("results")
    for leftover in store.root.glob("results.sqlite*"):
        leftover.unlink()
    if damage == "zero bytes":
        store.db_path.write_bytes(b"")
    else:
        store.db_path.mkdir()
    for args in (
        ["results", str(store.root)],
        ["run", config_file(manual(*LONG), tmp_path), "-r", str(store.root)],
    ):
        code, out, err = invoke(*args)
        assert code == 2, (args, out, err)
        assert one_line(err) and "holds no runs" not in err, err
        assert ("is damaged: the file is empty (0 bytes)" in err) == (damage == "zero bytes")
    code, out, err = invoke("verify", str(store.root))
    assert code == 1 and "PROBLEM results.sqlite:" in out and not err
    assert "safe to delete" not in out and "orphans" not in out and "keep them" in out
    if damage == "zero bytes":
        assert store.db_path.stat().st_size == 0  # nothing was written into it
