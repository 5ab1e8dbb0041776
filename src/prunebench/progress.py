"""Live progress for runs: what step, which epoch, which metric. Silent with --quiet.

The runner calls these hooks; a Progress never influences results.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table


class Progress:
    """No-op hooks (the quiet display); subclasses draw something."""

    wants_estimate = False  # the driver times a few batches for an ETA only for displays

    def run_started(self, run_id: str, label: str, n_steps: int) -> None: ...

    def step_started(self, step: int, target: float) -> None: ...

    def epoch_done(self, step: int, record: Any, phase: str = "finetune") -> None: ...

    def step_done(self, row: dict[str, Any]) -> None: ...

    def run_finished(self, run_id: str, status: str) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...

    # A sweep: an overall bar over the steps it has to compute, beside the current run.
    # `estimate`: (fewest, most) seconds for those steps (estimate.py), until real timings exist.
    def sweep_started(
        self, steps: int, runs: int, estimate: tuple[float, float] | None = None
    ) -> None: ...

    def sweep_update(
        self, steps_done: int, runs_done: int, runs_failed: int, current: list[str]
    ) -> None: ...

    def sweep_finished(self) -> None: ...


class RichProgress(Progress):
    """A small live panel on stderr, redrawn at most a few times per second."""

    wants_estimate = True

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live: Live | None = None
        self.state: dict[str, Any] = {}
        self.sweep: dict[str, Any] = {}
        self._last = 0.0

    def _render(self) -> Table:
        s = self.state
        table = Table.grid(padding=(0, 2))
        if self.sweep:
            table.add_row(*self._sweep_cells())
            if not s:
                return table
        table.add_row(
            f"[bold]{s.get('label', '')}[/]",
            f"step {s.get('step', '-')}/{s.get('n_steps', '-')}",
            f"target {s.get('target', 0):.4f}",
            f"{s.get('phase', '')} epoch {s.get('epoch', '-')}",
            f"val {s.get('val', '')}",
            f"last test top-1 {s.get('last_test', '')}",
        )
        return table

    def _refresh(self, force: bool = False) -> None:
        if self.live is None:
            self.live = Live(self._render(), console=self.console, auto_refresh=False)
            self.live.start()
        now = time.monotonic()
        if force or now - self._last > 0.2:
            self.live.update(self._render(), refresh=True)
            self._last = now

    def run_started(self, run_id, label, n_steps):
        self.state = {"label": label or run_id, "n_steps": n_steps}
        self._refresh(force=True)

    def step_started(self, step, target):
        self.state.update(step=step, target=target, epoch="-")
        self._refresh(force=True)

    def epoch_done(self, step, record, phase="finetune"):
        self.state.update(
            epoch=record.epoch,
            phase=phase,
            val=f"loss {record.val_loss:.4f} metric {record.val_metric:.4f}",
        )
        self._refresh()

    def step_done(self, row):
        metric = row.get("test_top1")
        if metric is None:
            metric = row.get("test_ppl")
        self.state["last_test"] = f"{metric:.4f}" if metric is not None else "-"
        self._refresh(force=True)

    def run_finished(self, run_id, status):
        self.close()
        self.console.print(f"{self.state.get('label', run_id)}: {status}")

    def message(self, text):
        self.console.print(text)

    def _sweep_cells(self) -> list[Any]:
        w = self.sweep
        total, done = w["steps"], w["done"]
        elapsed = time.monotonic() - w["started"]
        eta = "-" if done == 0 else _duration(elapsed / done * max(total - done, 0))
        if done == 0 and w.get("estimate"):  # measured batches until measured steps exist
            lo, hi = (_duration(max(b - elapsed, 0)) for b in w["estimate"])
            eta = f"~{lo}" if lo == hi else f"~{lo}-{hi}"
        current = w["current"]
        shown = ", ".join(current[:2]) + (f" +{len(current) - 2}" if len(current) > 2 else "")
        failed = f" · [red]{w['failed']} failed[/]" if w["failed"] else ""
        return [
            "[bold]sweep[/]",
            ProgressBar(total=max(total, 1), completed=done, width=30),
            f"{done}/{total} steps · {w['runs_done']}/{w['runs']} runs{failed}",
            f"ETA {eta}",
            shown,
        ]

    def sweep_started(self, steps, runs, estimate=None):
        self.sweep = {
            "estimate": estimate,
            "steps": steps,
            "runs": runs,
            "done": 0,
            "runs_done": 0,
            "failed": 0,
            "current": [],
            "started": time.monotonic(),
        }
        self._refresh(force=True)

    def sweep_update(self, steps_done, runs_done, runs_failed, current):
        self.sweep.update(done=steps_done, runs_done=runs_done, failed=runs_failed, current=current)
        self._refresh()

    def sweep_finished(self):
        self.close()
        self.sweep = {}

    def close(self):
        if self.live is not None:
            self.live.stop()
            self.live = None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def make_progress(quiet: bool) -> Progress:
    if quiet:
        return Progress()
    return RichProgress(Console(stderr=True, force_terminal=None if sys.stderr.isatty() else False))
