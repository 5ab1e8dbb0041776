"""`prunebench sweep --until-decided` end to end on a tiny digits sweep: its range in a dry run,
its rounds, ordinary rows that report/advise/results read, and kill -9 between rounds and inside
a round ending with the rows and decisions of an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import run_cli
from prunebench.cli.until_decided import design_for
from prunebench.config.loading import load_run_config
from prunebench.errors import PrunebenchError
from sweep_helpers import count_rows, env, run_sweep, sweep_cmd, table, write_sweep

TIMING = {"seconds", "created_at"}
UNTIL = ("--until-decided", "--max-seeds", "3")


def tiny_sweep(tmp_path):
    return write_sweep(
        tmp_path / "sweep.yaml",
        cases=[{"regime": {"name": "one_shot"}}, {"regime": {"name": "geometric", "rate": 0.3}}],
        grid={"regime.target": [0.9], "seed": [0, 1]},
    )


def seeds_by_regime(results) -> dict[str, list[int]]:
    # read-only: polling must never create the file (a 0-byte database is "damaged")
    con = sqlite3.connect(f"file:{results / 'results.sqlite'}?mode=ro", uri=True)
    rows = con.execute("SELECT regime, seed FROM runs WHERE status = 'done' ORDER BY seed")
    out: dict[str, list[int]] = {}
    for regime, seed in rows:
        out.setdefault(regime, []).append(seed)
    con.close()
    return out


@pytest.mark.slow  # three CLI processes
def test_options_need_until_decided_and_a_sane_design(tmp_path):
    sweep = tiny_sweep(tmp_path)
    bad = run_sweep(str(sweep), "--results", str(tmp_path / "r"), "--max-seeds", "4")
    assert bad.returncode == 2 and "need --until-decided" in bad.stderr
    bad = run_sweep(str(sweep), "--results", str(tmp_path / "r"), "--until-decided",
                    "--max-seeds", "2")  # fmt: skip
    assert bad.returncode == 2 and "--max-seeds must be at least 3" in bad.stderr
    dry = run_sweep(str(sweep), "--results", str(tmp_path / "r"), *UNTIL, "--dry-run",
                    "--no-estimate")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "between the first round (2 seeds) and 3 seeds everywhere" in dry.stdout
    assert "runs: 4" in dry.stdout and "runs: 6" in dry.stdout
    assert not (tmp_path / "r" / "results.sqlite").exists()


@pytest.mark.slow
def test_until_decided_rounds_rows_report_and_advise(tmp_path):
    sweep, results = tiny_sweep(tmp_path), tmp_path / "res"
    done = run_sweep(str(sweep), "--results", str(results), *UNTIL)
    assert done.returncode == 0, done.stderr
    assert "--until-decided: 2 round(s) here, 3 seeds at the last look" in done.stdout
    assert "digits_cnn on digits, unstructured, magnitude, 90 %" in done.stdout
    seeds = seeds_by_regime(results)
    assert all(s[:2] == [0, 1] for s in seeds.values()) and max(map(len, seeds.values())) == 3
    advice = run_cli("advise", str(results))
    assert advice.returncode == 0, advice.stderr
    assert "Sequential decisions (sweep --until-decided; act on these):" in advice.stdout
    report = run_cli("report", str(results))
    assert report.returncode == 0, report.stderr
    text = (results / "report" / "report.md").read_text()
    assert "Sequential decisions (sweep --until-decided)" in text
    plain = run_cli("results", str(results))  # ordinary rows
    assert plain.returncode == 0 and "pruning steps" in plain.stdout
    again = run_sweep(str(sweep), "--results", str(results), *UNTIL)  # nothing left to run
    assert again.returncode == 0 and "1 round(s) here, 3 seeds" in again.stdout
    assert again.stdout.splitlines()[1:] == done.stdout.splitlines()[1:]  # the same decisions
    # a design stored before the method was recorded: never continued or replayed with this one
    stored = results / "until_decided.json"
    stored.write_text(json.dumps({k: v for k, v in json.loads(stored.read_text()).items()
                                  if k != "method"}))  # fmt: skip
    refused = run_sweep(str(sweep), "--results", str(results), *UNTIL)
    assert refused.returncode == 2 and "earlier sequential method" in refused.stderr
    assert "Traceback" not in refused.stderr
    advice = run_cli("advise", str(results))
    assert advice.returncode == 0 and "earlier sequential method" in advice.stdout
    assert "Sequential decisions" not in advice.stdout
    assert run_cli("report", str(results)).returncode == 0
    text = (results / "report" / "report.md").read_text()
    assert "earlier sequential method" in text and "Sequential decisions" not in text


def _kill_when(proc, ready, results) -> None:
    deadline = time.monotonic() + 400
    while not ready():
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["between rounds", "inside a round"])
def test_a_killed_until_decided_sweep_ends_as_an_uninterrupted_one(tmp_path, where):
    sweep = tiny_sweep(tmp_path)
    killed, fresh = tmp_path / "killed", tmp_path / "fresh"
    proc = subprocess.Popen(sweep_cmd(str(sweep), "--results", str(killed), *UNTIL), env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def finished_runs() -> int:
        try:
            return sum(len(s) for s in seeds_by_regime(killed).values())
        except sqlite3.OperationalError:
            return 0

    if where == "between rounds":
        _kill_when(proc, lambda: finished_runs() >= 4, killed)  # the first round is done
    else:
        _kill_when(proc, lambda: count_rows(killed, "runs") > 4, killed)  # round 2 has begun
    resumed = run_sweep(str(sweep), "--results", str(killed), *UNTIL)
    assert resumed.returncode == 0, resumed.stderr
    shutil.copytree(killed / "dense", fresh / "dense")
    whole = run_sweep(str(sweep), "--results", str(fresh), *UNTIL)
    assert whole.returncode == 0, whole.stderr
    assert table(killed, "steps", TIMING) == table(fresh, "steps", TIMING)
    assert resumed.stdout.splitlines()[1:-1] == whole.stdout.splitlines()[1:-1]  # decisions


@pytest.mark.slow
def test_the_processes_executor_gives_the_rounds_of_the_local_one(tmp_path):
    """Rounds on two worker processes: the same rows and decisions as one process (the dense
    models are shared so that both start from the same weights)."""
    sweep = tiny_sweep(tmp_path)
    local, procs = tmp_path / "local", tmp_path / "procs"
    alone = run_sweep(str(sweep), "--results", str(local), *UNTIL)
    assert alone.returncode == 0, alone.stderr
    shutil.copytree(local / "dense", procs / "dense")
    workers = run_sweep(str(sweep), "--results", str(procs), *UNTIL, "--executor", "processes",
                        "--workers", "2", "--threads", "1")  # fmt: skip
    assert workers.returncode == 0, workers.stderr
    assert table(procs, "steps", TIMING) == table(local, "steps", TIMING)
    assert workers.stdout.splitlines()[1:-1] == alone.stdout.splitlines()[1:-1]


@pytest.mark.parametrize(
    ("max_seeds", "budget", "hours", "message"),
    [
        (101, None, None, "--max-seeds must be at most 100, got 101"),  # looks solved in seconds
        (None, float("nan"), None, "--budget must be a finite number > 0, got nan"),
        (None, None, float("inf"), "--budget-hours must be a finite number > 0, got inf"),
        (None, -5.0, None, "--budget must be a finite number > 0, got -5"),
    ],
)
def test_design_options_out_of_range_are_one_line(tmp_path, max_seeds, budget, hours, message):
    configs = [load_run_config(None, [f"seed={s}"]) for s in (0, 1)]
    with pytest.raises(PrunebenchError) as err:
        design_for(configs, tmp_path, max_seeds, budget, hours)
    assert str(err.value) == message
