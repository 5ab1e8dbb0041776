"""Where a run or a sweep is: which step, which epoch, which metric, how much is left.

The driver and the local executor call these hooks; a display never influences results.
`make_progress` picks one: `Progress` (silent, --quiet), `RichProgress` (a live panel when
stderr is a terminal: one line each for the sweep, the step being computed and the last step
finished, each cut to the terminal's width) or `LogProgress` (plain lines for a log file: one
per finished step with steps done/planned, runs done, elapsed time and ETA).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

METRIC_NAMES = {"top1": "top-1", "top5": "top-5", "ppl": "ppl"}


class Progress:
    """No-op hooks (the quiet display); subclasses draw something."""

    wants_estimate = False  # the driver times a few batches for an ETA only for displays
    # the sweep's one clock (time.monotonic() when the command started), set by the driver: the
    # live display's elapsed time, its final line and the summary line all count from it
    clock_start: float | None = None

    def run_started(self, run_id: str, label: str, n_steps: int, metric: str = "top1") -> None:
        """A run (or, with n_steps == 0, the pretraining of a dense model) starts computing;
        `metric` is its task's headline metric (top1, ppl)."""

    def step_started(self, step: int, target: float, max_epochs: int | None = None) -> None:
        """Step `step` (0: pretraining) prunes to `target` and trains at most `max_epochs`."""

    def epoch_done(self, step: int, record: Any, phase: str = "finetune") -> None: ...

    def step_done(self, row: dict[str, Any]) -> None:
        """A step's row was written (`row["run_id"]`: the run that owns it)."""

    def run_finished(self, run_id: str, status: str) -> None: ...

    def message(self, text: str) -> None: ...

    def warning(self, text: str) -> None:
        """Shown even when quiet (e.g. a tracking server that stopped answering, a damaged
        checkpoint computed again)."""
        print(f"warning: {text}", file=sys.stderr, flush=True)

    def close(self) -> None: ...

    # A sweep (a single run is a sweep of one): the steps it has to compute, the runs in it.
    def runs_planned(self, runs: dict[str, tuple[str, int]]) -> None:
        """Run id -> (title, number of steps) of every run in the plan, for naming steps that
        were computed elsewhere (worker processes, Ray)."""

    # `estimate`: (fewest, most) seconds for those steps (estimate.py), until real timings exist.
    def sweep_started(
        self, steps: int, runs: int, estimate: tuple[float, float] | None = None
    ) -> None: ...

    def sweep_update(
        self, steps_done: int, runs_done: int, runs_failed: int, current: list[str]
    ) -> None: ...

    def sweep_finished(self, seconds: float | None = None) -> None:
        """The sweep ended after `seconds` on the one clock (shown as the final elapsed time)."""


# ---------------------------------------------------------------- what the displays say


def metric_text(metric: str, value: float | None) -> str:
    """'top-1 97.92%' or 'ppl 1.884': accuracies as percentages, perplexity as it is."""
    name = METRIC_NAMES.get(metric, metric)
    if value is None:
        return f"{name} -"
    return f"{name} {value:.3f}" if metric == "ppl" else f"{name} {value * 100:.2f}%"


def row_metric(row: dict[str, Any]) -> tuple[str, float | None]:
    """The headline test metric of a step row: perplexity for language models, else top-1."""
    if row.get("test_ppl") is not None:
        return "ppl", row["test_ppl"]
    return "top1", row.get("test_top1")


def step_summary(row: dict[str, Any], label: str, n_steps: int, target: bool = False) -> str:
    """'geometric q=0.3 @0.9 seed 1 · step 3/7: top-1 99.31%, 5 epochs' (`target`: the step's
    cumulative target after the step number)."""
    metric, value = row_metric(row)
    of = f"/{n_steps}" if n_steps else ""
    to = f" → {row.get('target', 0):.4f}" if target else ""
    return (
        f"{label or row.get('run_id', '')} · step {row.get('step')}{of}{to}: "
        f"test {metric_text(metric, value)}, {row.get('epochs')} epochs"
    )


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class _State:
    """What every display tracks: the sweep's counts and clock, the run and step in progress,
    the last step finished."""

    def __init__(self) -> None:
        self.sweep: dict[str, Any] = {}
        self.run: dict[str, Any] = {}
        self.last = ""
        self.titles: dict[str, tuple[str, int]] = {}

    def describe(self, row: dict[str, Any], target: bool = False) -> str:
        """A finished step in words, named after the run that owns it."""
        label, n_steps = self.titles.get(
            row.get("run_id", ""), (self.run.get("label", ""), self.run.get("n_steps", 0))
        )
        return step_summary(row, label, n_steps, target)

    def start_sweep(
        self,
        steps: int,
        runs: int,
        estimate: tuple[float, float] | None = None,
        started: float | None = None,
    ) -> None:
        self.sweep = {
            "steps": steps,
            "runs": runs,
            "estimate": estimate,
            "done": 0,
            "runs_done": 0,
            "failed": 0,
            "current": [],
            "started": time.monotonic() if started is None else started,
            "seconds": None,  # set when the sweep ends: the elapsed time stops there
        }

    def counts(self, final: bool = False) -> str:
        """'12/80 steps · ETA 4m10s · 3/40 runs done · 1 failed · 1m02s elapsed' (the ETA
        first: it is what a cut line must keep)."""
        w = self.sweep
        total, done = w["steps"], w["done"]
        elapsed = w["seconds"] if w.get("seconds") is not None else time.monotonic() - w["started"]
        eta = "-" if done == 0 else duration(elapsed / done * max(total - done, 0))
        if done == 0 and w.get("estimate"):  # measured batches until measured steps exist
            lo, hi = (duration(max(b - elapsed, 0)) for b in w["estimate"])
            eta = f"~{lo}" if lo == hi else f"~{lo}-{hi}"
        parts = [f"{done}/{total} steps"]
        if not final:
            parts.append(f"ETA {eta}")
        parts.append(f"{w['runs_done']}/{w['runs']} runs done")
        if w["failed"]:
            parts.append(f"{w['failed']} failed")
        parts.append(f"{duration(elapsed)} elapsed")
        return " · ".join(parts)

    def start_run(self, label: str, n_steps: int, metric: str) -> None:
        self.run = {"label": label, "n_steps": n_steps, "metric": metric}

    def where(self) -> tuple[str, str]:
        """('geometric q=0.3 @0.9 seed 1 · step 3/7 → 0.6570', 'fine-tune epoch 4/20 · val loss
        0.0531 · top-1 97.92%'); pretraining has no step and no target, and before the first
        epoch the second part is empty."""
        r = self.run
        head = r["label"]
        if r.get("step"):  # 0 or None: pretraining, or not started yet
            head += f" · step {r['step']}/{r['n_steps']} → {r['target']:.4f}"
        if "epoch" not in r:
            return head, ""
        most = f"/{r['max_epochs']}" if r.get("max_epochs") else ""
        phase = "pretrain" if r.get("phase") == "pretrain" else "fine-tune"
        val = f"val loss {r['val_loss']:.4f} · {metric_text(r['metric'], r['val'])}"
        return head, f"{phase} epoch {r['epoch']}{most} · {val}"

    def epoch(self, record: Any, phase: str) -> None:
        self.run.update(
            epoch=record.epoch, phase=phase, val_loss=record.val_loss, val=record.val_metric
        )


# ---------------------------------------------------------------- terminal


class RichProgress(Progress):
    """A small live panel on a terminal (stderr), redrawn at most five times per second.

    One line per thing, each cut to the terminal's width (never wrapped): the sweep's bar and
    counts, the step being computed (or the steps in flight on other processes), the last step
    finished. The last frame drawn is the final state (the sweep's bar ends full).
    """

    wants_estimate = True

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live: Live | None = None
        self.state = _State()
        self._last_draw = 0.0

    def _line(self, text: str, style: str = "") -> Text:
        return Text(text, style=style, no_wrap=True, overflow="ellipsis")

    def _render(self) -> Group:
        s = self.state
        lines: list[Any] = []
        if s.sweep:
            w = s.sweep
            width = 10 if self.console.width < 100 else 24
            filled = round(width * min(w["done"] / max(w["steps"], 1), 1.0))
            line = self._line("")
            line.append("sweep ", "bold")
            line.append("━" * filled, style="green" if filled == width else "magenta")
            line.append("━" * (width - filled), style="grey23")
            line.append(f" {s.counts(final=w['done'] >= w['steps'])}", "red" if w["failed"] else "")
            lines.append(line)
            if w["current"] and (not s.run or len(w["current"]) > 1):
                current = w["current"]
                more = f" +{len(current) - 2}" if len(current) > 2 else ""
                lines.append(self._line(f"computing: {', '.join(current[:2])}{more}"))
        if s.run:
            head, epoch = s.where()
            lines.append(self._line(f"▶ {head}", "bold"))
            if epoch:
                lines.append(self._line(f"  {epoch}"))
        if s.last:
            lines.append(self._line(f"last: {s.last}", "dim"))
        return Group(*lines)

    def _refresh(self, force: bool = False) -> None:
        if self.live is None:
            self.live = Live(console=self.console, auto_refresh=False)
            self.live.start()
            force = True
        now = time.monotonic()
        if force or now - self._last_draw > 0.2:
            self.live.update(self._render(), refresh=True)
            self._last_draw = now

    def run_started(self, run_id, label, n_steps, metric="top1"):
        self.state.start_run(label or run_id, n_steps, metric)
        self._refresh(force=True)

    def step_started(self, step, target, max_epochs=None):
        self.state.run.update(step=step, target=target, max_epochs=max_epochs)
        for key in ("epoch", "val", "val_loss"):
            self.state.run.pop(key, None)
        self._refresh(force=True)

    def epoch_done(self, step, record, phase="finetune"):
        self.state.epoch(record, phase)
        self._refresh()

    def runs_planned(self, runs):
        self.state.titles = dict(runs)

    def step_done(self, row):
        self.state.last = self.state.describe(row)
        self.state.run = {}
        self._refresh(force=True)

    def run_finished(self, run_id, status):
        label = self.state.run.get("label", run_id)
        self.close()  # the final frame keeps the run's last epoch
        self.state.run = {}
        self.console.print(f"{label}: {status}", markup=False, highlight=False)

    def warning(self, text):
        self.console.print(Text.assemble(("warning:", "yellow"), f" {text}"), highlight=False)

    def message(self, text):
        self.console.print(text, markup=False, highlight=False)

    def sweep_started(self, steps, runs, estimate=None):
        self.state.start_sweep(steps, runs, estimate, self.clock_start)
        self._refresh(force=True)

    def sweep_update(self, steps_done, runs_done, runs_failed, current):
        self.state.sweep.update(
            done=steps_done, runs_done=runs_done, failed=runs_failed, current=current
        )
        self._refresh()

    def sweep_finished(self, seconds=None):
        self.state.run = {}
        if self.state.sweep:
            self.state.sweep.update(current=[], seconds=seconds)
        self.close()
        self.state.sweep = {}

    def close(self):
        """Draw the final state (never a stale frame), then end the live display."""
        if self.live is not None:
            self.live.update(self._render(), refresh=True)
            self.live.stop()
            self.live = None


# ---------------------------------------------------------------- log files


class LogProgress(Progress):
    """Plain lines for a log file (stderr is not a terminal), each ending with a newline.

    One line per finished step, prefixed with the sweep's counts; runs that end get their own
    line; pretraining says when it starts and ends. A long step or pretraining prints an epoch
    line at most every `heartbeat` seconds, so a log never goes quiet for long.
    """

    wants_estimate = True

    def __init__(self, stream: TextIO | None = None, heartbeat: float = 60.0) -> None:
        self.stream = stream or sys.stderr
        self.heartbeat = heartbeat
        self.state = _State()
        self._pending: str | None = None  # a finished step, printed with the next counts
        self._held: list[str] = []  # messages that belong after the pending step's line
        self._last_line = time.monotonic()

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_line = time.monotonic()

    def run_started(self, run_id, label, n_steps, metric="top1"):
        self.state.start_run(label or run_id, n_steps, metric)
        if n_steps == 0:
            self._print(f"{label or run_id}: started")

    def step_started(self, step, target, max_epochs=None):
        self.state.run.update(step=step, target=target, max_epochs=max_epochs)

    def epoch_done(self, step, record, phase="finetune"):
        self.state.epoch(record, phase)
        if time.monotonic() - self._last_line >= self.heartbeat:
            self._print(" · ".join(self.state.where()))

    def runs_planned(self, runs):
        self.state.titles = dict(runs)

    def step_done(self, row):
        self._pending = self.state.describe(row, target=True)
        if not self.state.sweep:
            self._flush()

    def run_finished(self, run_id, status):
        self._print(f"{self.state.run.get('label', run_id)}: {status}")
        self.state.run = {}

    def warning(self, text):
        self._print(f"warning: {text}")

    def message(self, text):
        if self._pending is not None:
            self._held.append(text)
        else:
            self._print(text)

    def _flush(self) -> None:
        if self._pending is not None:
            prefix = f"[{self.state.counts()}] " if self.state.sweep else ""
            self._print(prefix + self._pending)
            self._pending = None
        for text in self._held:
            self._print(text)
        self._held = []

    def sweep_started(self, steps, runs, estimate=None):
        self.state.start_sweep(steps, runs, estimate, self.clock_start)
        self._print(f"sweep: {steps} steps to compute for {runs} runs")

    def sweep_update(self, steps_done, runs_done, runs_failed, current):
        self.state.sweep.update(
            done=steps_done, runs_done=runs_done, failed=runs_failed, current=current
        )
        self._flush()

    def sweep_finished(self, seconds=None):
        self._flush()
        if self.state.sweep:
            self.state.sweep["seconds"] = seconds
            self._print(f"sweep finished: {self.state.counts(final=True)}")
        self.state.sweep = {}


def make_progress(quiet: bool) -> Progress:
    """Silent with --quiet; a live panel on a terminal; plain lines in a log file."""
    if quiet:
        return Progress()
    if sys.stderr.isatty():
        return RichProgress(Console(stderr=True))
    return LogProgress(sys.stderr)
