"""The live display (a recording terminal console and a pseudo-terminal) and the log lines."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest
from rich.console import Console

from prunebench.engine.driver import execute_plan
from prunebench.engine.finetune import EpochRecord
from prunebench.engine.plan import build_plan
from prunebench.progress import LogProgress, Progress, RichProgress, duration, make_progress
from prunebench.store.database import Store
from sweep_helpers import env, write_sweep

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Before each redraw rich's Live moves back over the previous frame: carriage return, erase
# line, then (cursor up, erase line) once per further line.
REDRAW = re.compile(r"\r\x1b\[2K(?:\x1b\[1A\x1b\[2K)*")


def frames(raw: str) -> list[list[str]]:
    """The frames a terminal showed, each as its lines without styles (messages printed above
    the panel come first in the frame drawn after them)."""
    pieces = [ANSI.sub("", piece) for piece in REDRAW.split(raw)]
    return [piece.rstrip("\n").split("\n") for piece in pieces if piece.strip()]


def terminal(width: int = 80) -> tuple[RichProgress, io.StringIO]:
    buffer = io.StringIO()
    return RichProgress(Console(file=buffer, force_terminal=True, width=width)), buffer


def record(epoch: int, val_loss: float = 0.0531, val_metric: float = 0.9792) -> EpochRecord:
    return EpochRecord(epoch, 0.3, val_loss, val_metric, 0.01, 0.1, True)


def test_pretraining_shows_its_epochs_and_no_step_target_or_test_metric():
    progress, buffer = terminal()
    progress.run_started("base", "pretrain digits_cnn on digits", 0, "top1")
    progress.step_started(0, 0.0, 40)
    progress.epoch_done(0, record(12), phase="pretrain")
    progress.run_finished("base", "pretrained for 32 epochs")
    final = frames(buffer.getvalue())[-1]
    assert final[0] == "▶ pretrain digits_cnn on digits"
    assert final[1].strip() == "pretrain epoch 12/40 · val loss 0.0531 · top-1 97.92%"
    text = buffer.getvalue()
    assert "step" not in text and "target" not in text and "test" not in text
    assert text.endswith("pretrain digits_cnn on digits: pretrained for 32 epochs\n")


def test_run_line_has_target_and_seed_and_last_step_survives_the_next_run(tmp_path, tiny):
    """Through the driver: the current run is named with its final target and seed, and the
    last finished step stays on screen while the next run computes."""
    plan = build_plan([tiny("seed=0", "regime.steps=1"), tiny("seed=1", "regime.steps=1")])
    progress, buffer = terminal(width=120)
    execute_plan(plan, Store(tmp_path / "r"), progress=progress)
    shown = frames(buffer.getvalue())
    seed1 = [f for f in shown if any(line.startswith("▶ geometric @0.8 seed 1") for line in f)]
    assert seed1, "the second run's line names its target and seed"
    assert all(
        any(line.startswith("last: geometric @0.8 seed 0 · step 1/1: test top-1 ") for line in f)
        for f in seed1
    )
    final = shown[-1]
    assert final[0].startswith("sweep ") and "2/2 steps · 2/2 runs done" in final[0]
    assert final[1].startswith("last: geometric @0.8 seed 1 · step 1/1: test top-1 ")
    assert ANSI.sub("", buffer.getvalue()).endswith("\n")  # what follows starts a new line


def test_language_models_show_perplexity_not_top1():
    progress, buffer = terminal()
    progress.sweep_started(2, 1)
    progress.run_started("lm", "one_shot @0.5 seed 0", 1, "ppl")
    progress.step_started(1, 0.5, 3)
    progress.epoch_done(1, record(2, val_loss=0.6312, val_metric=1.8799))
    progress._refresh(force=True)
    progress.step_done({"run_id": "lm", "step": 1, "target": 0.5, "test_ppl": 1.8842, "epochs": 2})
    progress.sweep_finished()
    shown = frames(buffer.getvalue())
    assert any(
        "fine-tune epoch 2/3 · val loss 0.6312 · ppl 1.880" in line for f in shown for line in f
    )
    assert shown[-1][-1] == "last: one_shot @0.5 seed 0 · step 1/1: test ppl 1.884, 2 epochs"
    assert "top-1" not in ANSI.sub("", buffer.getvalue())


def test_the_last_frame_shows_the_final_counts_even_when_updates_came_fast():
    progress, buffer = terminal()
    progress.sweep_started(80, 40)
    for done in range(1, 81):  # faster than the redraw limit: most are not drawn
        progress.sweep_update(done, done // 2, 0, ["one_shot @0.5 seed 0"])
    progress.sweep_finished()
    assert frames(buffer.getvalue())[-1][0].startswith("sweep ━━━━━━━━━━ 80/80 steps · 40/40 runs")


def test_every_line_fits_80_columns():
    progress, buffer = terminal(width=80)
    label = "hybrid p_k=0.4 q=0.2 (first_patience=12, finetune.lr=0.001) @0.95 seed 1"
    progress.sweep_started(80, 40)
    progress.sweep_update(37, 12, 1, [label])
    progress.run_started("r", label, 4, "top1")
    progress.step_started(3, 0.8843, 20)
    progress.epoch_done(3, record(4))
    progress._refresh(force=True)
    progress.step_done({"run_id": "r", "step": 3, "target": 0.88, "test_top1": 0.99, "epochs": 5})
    progress.sweep_finished()
    shown = frames(buffer.getvalue())
    assert max(len(line) for f in shown for line in f) <= 80
    busy = next(f for f in shown if len(f) == 3)  # sweep, run, epoch: one line each
    assert busy[0].startswith("sweep ") and "37/80 steps · ETA " in busy[0]
    assert busy[1].startswith("▶ hybrid p_k=0.4") and busy[1].endswith("…")  # cut, not wrapped
    assert busy[2] == "  fine-tune epoch 4/20 · val loss 0.0531 · top-1 97.92%"


def test_log_lines_one_per_finished_step_with_counts_and_eta(tmp_path, tiny):
    plan = build_plan([tiny("seed=0"), tiny("regime={name: one_shot, target: 0.5}")])
    stream = io.StringIO()
    execute_plan(plan, Store(tmp_path / "r"), progress=LogProgress(stream))
    lines = stream.getvalue().splitlines()
    assert stream.getvalue().endswith("\n")
    assert lines[0] == "pretrain digits_cnn on digits: started"
    assert lines[1] == "pretrain digits_cnn on digits: pretrained for 4 epochs"
    assert lines[2] == "sweep: 3 steps to compute for 2 runs"
    steps = [line for line in lines if line.startswith("[")]
    pattern = (
        r"\[{k}/3 steps · ETA \d+m\d\ds · {r}/2 runs done · \d+m\d\ds elapsed\] "
        r"{label} · step {i}/{n} → {t}: test top-1 \d+\.\d\d%, \d+ epochs"
    )
    expected = [
        (1, 0, "geometric @0.8 seed 0", 1, 2, "0.5528"),
        (2, 1, "geometric @0.8 seed 0", 2, 2, "0.8000"),
        (3, 2, "one_shot @0.5 seed 0", 1, 1, "0.5000"),
    ]
    assert len(steps) == 3
    for line, (k, r, label, i, n, t) in zip(steps, expected, strict=True):
        assert re.fullmatch(pattern.format(k=k, r=r, label=label, i=i, n=n, t=t), line), line
    # a run's "done" line follows the line of its last step
    assert lines[lines.index(steps[1]) + 1] == "geometric @0.8 seed 0: done"
    assert lines[-1].startswith("sweep finished: 3/3 steps · 2/2 runs done · ")


def test_the_display_and_the_summary_count_from_the_commands_start(tmp_path, tiny):
    """The sweep's one clock starts when the command did (`started`): the final elapsed time
    and the summary's seconds are one number, which includes the time before the sweep."""
    stream = io.StringIO()
    before = time.monotonic() - 65  # the command started 65 s ago (planning, data, ...)
    plan = build_plan([tiny("regime={name: one_shot, target: 0.5}")])
    summary = execute_plan(
        plan, Store(tmp_path / "r"), progress=LogProgress(stream), started=before
    )
    assert 65 <= summary.seconds <= time.monotonic() - before
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("sweep finished: ") and last.endswith(
        f"· {duration(summary.seconds)} elapsed"
    )
    assert duration(summary.seconds).startswith("1m")


def test_log_heartbeat_during_long_steps():
    stream = io.StringIO()
    progress = LogProgress(stream, heartbeat=0.0)
    progress.sweep_started(1, 1)
    progress.run_started("r", "one_shot @0.5 seed 0", 1, "top1")
    progress.step_started(1, 0.5, 20)
    progress.epoch_done(1, record(1))
    assert stream.getvalue().splitlines()[-1] == (
        "one_shot @0.5 seed 0 · step 1/1 → 0.5000 · fine-tune epoch 1/20 · val loss 0.0531 · "
        "top-1 97.92%"
    )


def test_make_progress_picks_quiet_terminal_or_log(monkeypatch):
    assert type(make_progress(quiet=True)) is Progress
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(make_progress(quiet=False), LogProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert isinstance(make_progress(quiet=False), RichProgress)


@pytest.mark.slow
def test_a_log_file_gets_lines_and_the_table_starts_on_its_own_line(tmp_path):
    sweep = write_sweep(tmp_path / "s.yaml", [{"regime": {"name": "one_shot", "target": 0.5}}], {})
    done = subprocess.run(
        [sys.executable, "-m", "prunebench", "sweep", str(sweep), "-r", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert any(re.match(r"\[1/1 steps · ETA \S+ · 1/1 runs done · ", line) for line in lines)
    finished = next(i for i, line in enumerate(lines) if line.startswith("sweep finished:"))
    assert "final test top1" in lines[finished + 1]  # the table's title, not glued to the line
    assert "\x1b[" not in done.stdout
    # one duration: the display's final elapsed time is the summary line's
    elapsed = re.search(r"· (\d+m\d\ds) elapsed$", lines[finished]).group(1)
    summary = next(line for line in lines if "steps computed" in line)
    assert summary.endswith(f"copied from stored steps) in {elapsed}"), summary


@pytest.mark.slow
def test_in_a_pseudo_terminal_80_columns_and_the_final_frame(tmp_path):
    """The real command in a terminal 80 columns wide: no line wraps, the last frame is full."""
    sweep = write_sweep(
        tmp_path / "s.yaml",
        [{"regime": {"name": "geometric", "target": 0.8, "steps": 2}}],
        {"seed": [0, 1]},
    )
    main, secondary = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "prunebench", "sweep", str(sweep), "-r", str(tmp_path / "r")],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**env(), "COLUMNS": "80", "LINES": "40", "TERM": "xterm-256color"},
        close_fds=True,
    )
    os.close(secondary)
    raw = b""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            raw += chunk
        elif child.poll() is not None:
            break
    child.wait(timeout=60)
    os.close(main)
    assert child.returncode == 0
    text = raw.decode().replace("\r\n", "\n")
    panel = text[: text.rindex("\x1b[?25h")]  # the sweep's panel ends showing the cursor again
    shown = frames(panel)
    assert max(len(line) for f in shown for line in f) <= 80
    final = shown[-1]
    assert final[0].startswith("sweep ━━━━━━━━━━ 4/4 steps · 2/2 runs done")
    assert final[1].startswith("last: geometric steps=2 @0.8 seed 1 · step 2/2: test top-1 ")
    assert any("▶ geometric steps=2 @0.8 seed 0 · step 1/2 → 0.5528" in f for f in shown)
