"""`prunebench run --nproc N` on the CPU with the gloo backend: rank 0 alone writes, every rank
prunes alike, and the ranks' parts of each batch add up to the batch."""

from __future__ import annotations

import multiprocessing
import socket
import sqlite3
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from prunebench.config.identity import run_id
from prunebench.config.loading import load_run_config
from prunebench.engine.executors import ddp_launch as ddp
from prunebench.engine.executors.ddp_launch import launch, without_option
from prunebench.engine.executors.ddp_rank import DataParallel, Shard
from prunebench.engine.single_run import run
from prunebench.errors import PrunebenchError
from prunebench.models.small import SmallCNN
from prunebench.pruning.unstructured import UnstructuredPruner
from prunebench.store.database import Store
from prunebench.tasks import make_task

CPU = torch.device("cpu")
DIGITS = Path(__file__).parents[2] / "configs" / "digits.yaml"


def test_ranks_split_every_batch_and_skip_alike():
    batches = [(torch.arange(n), torch.arange(n)) for n in (7, 8, 1)]
    parts = [list(Shard(batches, rank, 2, skip_small=False)) for rank in (0, 1)]
    for i, (x, _) in enumerate(batches):  # evaluation: every sample once, in order
        assert torch.equal(torch.cat([parts[0][i][0], parts[1][i][0]]), x)
    assert [len(p[0][1]) for p in parts] == [3, 4]
    training = [list(Shard(batches, rank, 2, skip_small=True)) for rank in (0, 1)]
    assert [len(t) for t in training] == [2, 2]  # the 1-sample batch is skipped by both ranks


def test_the_launched_command_is_the_same_without_nproc():
    argv = ["run", "cfg.yaml", "--nproc", "2", "--set", "seed=1", "--nproc=4", "--quiet"]
    assert without_option(argv, "--nproc") == ["run", "cfg.yaml", "--set", "seed=1", "--quiet"]


def _rank_main(rank: int, init: str, queue) -> None:
    """Rank `rank` of 2 (forked): reduced metrics, then `agree` after equal and unequal pruning.
    Sends plain values back (a tensor would be shared through a process that is gone)."""
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
        parallel = DataParallel(rank, 2, CPU)
        torch.manual_seed(0)
        x, y = torch.randn(10, 1, 8, 8), torch.randint(0, 10, (10,))
        model = SmallCNN(1, 10, width=4)
        task = parallel.task(make_task("classification"))
        reduced = task.evaluate(model, Shard([(x, y)], rank, 2, skip_small=False), CPU)
        whole = make_task("classification").evaluate(model, [(x, y)], CPU)

        torch.manual_seed(1)
        model = SmallCNN(1, 10, width=4)
        pruner = UnstructuredPruner.for_model(model, criterion="magnitude")
        pruner.prune_to(model, 0.5)
        if rank == 1:  # as if a GPU broke score ties differently: same counts, other weights
            name = pruner.masks.names[0]
            pruner.masks.set({**pruner.masks.keep, name: pruner.masks.keep[name].flip(0)})
            with torch.no_grad():
                next(model.parameters()).add_(1.0)
        parallel.agree(model, pruner)
        weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).tolist()
        masks = torch.cat([m.reshape(-1) for m in pruner.masks.keep.values()]).tolist()
        pruner.prune_to(model, 0.7 if rank == 0 else 0.6)  # a rank deciding differently
        try:
            parallel.agree(model, pruner)
            refused = False
        except PrunebenchError:
            refused = True
        queue.put((rank, reduced, whole, weights, masks, refused))
    except Exception:
        queue.put((rank, traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_ranks_reduce_metrics_and_agree_on_pruning(tmp_path):
    ctx = multiprocessing.get_context("fork")  # no re-import: the ranks start in milliseconds
    queue = ctx.Queue()
    init = f"file://{tmp_path / 'rendezvous'}"
    ranks = [ctx.Process(target=_rank_main, args=(r, init, queue)) for r in (0, 1)]
    for p in ranks:
        p.start()
    results = {}
    for _ in ranks:
        item = queue.get(timeout=120)
        results[item[0]] = item[1:]
    for p in ranks:
        p.join(timeout=60)
    for rank, item in results.items():
        assert len(item) == 5, f"rank {rank} failed:\n{item[0]}"
    (reduced0, whole0, w0, m0, refused0), (reduced1, _, w1, m1, refused1) = results[0], results[1]
    assert reduced0 == reduced1  # the same metrics on every rank ...
    assert reduced0["top1"] == whole0["top1"] and reduced0["top5"] == whole0["top5"]
    assert reduced0["loss"] == pytest.approx(whole0["loss"], rel=1e-6)  # ... of the whole batch
    assert w0 == w1 and m0 == m1  # rank 0's weights and masks everywhere
    assert refused0 and refused1  # different decisions stop both ranks


def _cli_rank(rank: int, port: int, argv: list[str], queue) -> None:
    """What torchrun starts: `prunebench ARGV` with the rendezvous in the environment. A follower
    that opened the results store would fail here."""
    import os
    import sys

    from prunebench.cli import app as cli
    from prunebench.store import database as store

    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )  # fmt: skip
    if rank > 0:

        def refuse(*args, **kwargs):
            raise AssertionError("a follower opened the results store")

        store.Store.__init__ = refuse
    sys.argv = ["prunebench", *argv]
    try:
        cli.main()
        queue.put((rank, 0))
    except SystemExit as exc:
        queue.put((rank, exc.code or 0))
    except BaseException:
        queue.put((rank, traceback.format_exc()))


def test_two_ranks_fine_tune_one_run_and_only_rank_0_writes(tmp_path):
    """`prunebench run` in two gloo ranks, as torchrun starts them (forked here: no start-up
    cost): the rows land once, under the run id a single process gives the config (how a run
    is executed is not what it is), and the first step prunes the same dense model alike."""
    overrides = [
        "device=cpu",
        "model.options={width: 8}",
        "pretrain.epochs=2",
        "finetune.max_epochs=1",
        "finetune.patience=1",
        "regime={name: geometric, target: 0.8, steps: 2}",
    ]
    cfg = load_run_config(DIGITS, overrides)
    alone = run(cfg, Store(tmp_path / "alone"))  # first: the forked ranks inherit its imports
    argv = ["run", str(DIGITS), "--quiet", "-r", str(tmp_path / "ddp")]
    argv += [a for o in overrides for a in ("--set", o)]
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    ranks = [ctx.Process(target=_cli_rank, args=(r, port, argv, queue)) for r in (0, 1)]
    for p in ranks:
        p.start()
    codes = dict(queue.get(timeout=300) for _ in ranks)
    for p in ranks:
        p.join(timeout=60)
    assert codes == {0: 0, 1: 0}, codes
    db = sqlite3.connect(tmp_path / "ddp" / "results.sqlite")
    runs = db.execute("SELECT run_id, status FROM runs").fetchall()
    steps = db.execute("SELECT step, achieved_sparsity, pruned_test_top1 FROM steps").fetchall()
    db.close()
    assert runs == [(alone.run_id, "done")] and alone.run_id == run_id(cfg)
    assert [s[0] for s in steps] == [1, 2]  # each row once
    assert [s[1] for s in steps] == pytest.approx([r["achieved_sparsity"] for r in alone.rows])
    assert steps[0][2] == alone.rows[0]["pruned_test_top1"]
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(
        p.name for p in (tmp_path / "alone").iterdir()
    )


def test_nproc_launches_the_command_through_torchrun():
    """`launch` (what --nproc calls) on a command that needs no GPU and no data: each copy's
    exit code comes back."""
    assert launch(2, ["schedule", "one_shot", "--target", "0.5", "--json"]) == 0
    assert launch(2, ["schedule", "one_shot", "--target", "2"]) == 2  # a config error, exit 2


def test_cuda_needs_a_gpu_per_process(monkeypatch, tiny):
    monkeypatch.setattr(ddp, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    ddp.check_devices(tiny(), 1)
    with pytest.raises(PrunebenchError, match="needs 2 GPUs"):
        ddp.check_devices(tiny(), 2)
