"""TensorBoard: one event directory per prunebench run, `DIR/<label>-<run id>/`, so TensorBoard
overlays the runs of a sweep on the same charts; the scalars are those of `base.py`
(`epoch/...` over cumulative fine-tuning epochs, `step/...` over pruning steps, `dense/...`).

Which steps a directory holds is read back from its own events: `step/target` is written last
in each step, so a step whose marker is there was written whole. The evaluations of `eval:`
(`eval/<name>` over pruning steps, `dense_eval/<name>` at 0) are recorded, after their scalars
are flushed, in `prunebench-evaluations.json` beside the events (a list of [step, setting
digest]; TensorBoard reads only event files); a run that finished is opened again for them.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from prunebench.tracking.base import MARKER, EvalRecord, RunInfo, Session, StepRecord
from prunebench.tracking.spec import local_path

MAX_OPEN = 8  # event writers kept open at once (each holds a file and a thread)
EVALS_FILE = "prunebench-evaluations.json"  # the evaluations a run's directory holds


def run_dir_name(run: RunInfo) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.=@+-]+", "_", run.label).strip("_")
    return f"{slug}-{run.run_id[:8]}"


def held_steps(directory: Path) -> set[int]:
    """The pruning steps whose marker scalar is in `directory`'s event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    acc.Reload()
    if MARKER not in acc.Tags().get("scalars", []):
        return set()
    return {event.step for event in acc.Scalars(MARKER)}


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, location: str) -> None:
        self.root = local_path(location).absolute()
        self._dirs: dict[str, Path] = {}
        self._writers: OrderedDict[str, Any] = OrderedDict()

    def open(self, session: Session) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer_class = SummaryWriter
        self.root.mkdir(parents=True, exist_ok=True)

    def _writer(self, run_id: str):
        if run_id in self._writers:
            self._writers.move_to_end(run_id)
            return self._writers[run_id]
        while len(self._writers) >= MAX_OPEN:
            _, oldest = self._writers.popitem(last=False)
            oldest.close()
        writer = self._writers[run_id] = self._writer_class(str(self._dirs[run_id]))
        return writer

    def start_run(self, run: RunInfo) -> set[int]:
        # a run keeps its directory when its label changes (e.g. a sweep with other axes)
        found = sorted(self.root.glob(f"*-{run.run_id[:8]}"))
        directory = found[0] if found else self.root / run_dir_name(run)
        self._dirs[run.run_id] = directory
        if directory.exists() and any(directory.iterdir()):
            return held_steps(directory)
        writer = self._writer(run.run_id)
        for key, value in run.dense.items():
            writer.add_scalar(key, value, 0)
        writer.flush()
        return set()

    def log_step(self, run: RunInfo, record: StepRecord, logged: set[int]) -> None:
        writer = self._writer(run.run_id)
        for epoch, values in record.epoch_metrics():
            for key, value in values.items():
                writer.add_scalar(key, value, epoch)
        for key, value in record.step_metrics().items():  # the marker, step/target, is last
            writer.add_scalar(key, value, record.step)
        writer.flush()

    def held_evaluations(self, run: RunInfo) -> set[tuple[int, str]]:
        path = self._dirs[run.run_id] / EVALS_FILE
        if not path.is_file():
            return set()
        return {(int(step), str(setting)) for step, setting in json.loads(path.read_text())}

    def log_evaluation(self, run: RunInfo, record: EvalRecord, held: set[tuple[int, str]]) -> None:
        writer = self._writer(run.run_id)
        for key, value in record.metrics().items():
            writer.add_scalar(key, value, record.step)
        writer.flush()  # the scalars are on disk before the record says they are there
        path = self._dirs[run.run_id] / EVALS_FILE
        temp = path.with_name(f".{EVALS_FILE}.tmp")
        temp.write_text(json.dumps(sorted(held)))
        os.replace(temp, path)

    def finish_run(self, run: RunInfo, status: str, error: str | None) -> None:
        writer = self._writers.pop(run.run_id, None)
        if writer is not None:
            writer.close()

    def close(self, failed: bool) -> None:
        while self._writers:
            self._writers.popitem()[1].close()
