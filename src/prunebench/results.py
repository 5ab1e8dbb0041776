"""Reading a results directory as tables (for `prunebench results` and for library users)."""

from __future__ import annotations

from pathlib import Path

from prunebench.store import open_existing


def load_results(directory: Path | str):
    """One pandas row per pruning step of every run in `directory`, with the run's fields."""
    return open_existing(directory).results()
