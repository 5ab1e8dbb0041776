"""Reading a results directory as tables (for `prunebench results`, reports and library users).

`load_results` is the single way to read results: one row per pruning step with every field of
its run beside it (status, error, config_json, ...). A run that failed before its first step
still gets one row (step fields empty), so that failures are never invisible. Per-example test
outcomes (bytes) come only when asked for (`outcomes=True`): exports stay plain tables. The
evaluations of a step (`eval:`; store/metrics.py) are columns `eval.NAME` of its row, those of
the run's dense model `dense_eval.NAME`.
`empty_layers` reads the keep masks of each run's last checkpoint for layers reduced to nothing.
`integrity_warning` says in one line when rows no longer match their digest (the CLI prints it
beside tables and reports). An adaptive run stored by an earlier version of the adaptive rule
reads as `outdated` (with the reason in `error`), so reports never mix its steps with those the
current rule chooses for the same config.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from safetensors import SafetensorError, safe_open

from prunebench.config.identity import made_by_this_version
from prunebench.errors import PrunebenchError
from prunebench.store.checkpoints import MASKS
from prunebench.store.database import Store, open_existing
from prunebench.store.files import checkpoint_path
from prunebench.store.metrics import dense_key
from prunebench.store.schema import DB_NAME

EXPORT_FORMATS = ("table", "csv", "json", "parquet")
OUTDATED = "outdated"
OUTDATED_REASON = (
    "its steps were chosen by an earlier version of the adaptive rule; run the config again to "
    "compute it with this version's rule (a new run id)"
)
EVAL_PREFIX = "eval."  # the columns of a step's evaluations (step_metrics), e.g. eval.ppl
DENSE_EVAL_PREFIX = f"dense_{EVAL_PREFIX}"  # those of the run's dense model
EVAL_OUTCOMES_PREFIX = "eval_outcomes."  # their per-example outcomes (load_results(outcomes=True))


def database_path(directory: Path | str) -> Path:
    """Where the results of `directory` live (for messages and report captions)."""
    return Path(directory) / DB_NAME


def integrity_warning(directory: Path | str) -> str | None:
    """One line when rows of `directory` (runs, steps, epochs) were changed after they were
    written."""
    bad = open_existing(directory).row_check().named()
    if not bad:
        return None
    shown = ", ".join(bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (
        f"{len(bad)} rows of {database_path(directory)} do not match their digest "
        f"({shown}{more}): changed after they were written; `prunebench verify {directory}`"
    )


def load_results(directory: Path | str, outcomes: bool = False) -> pd.DataFrame:
    """One pandas row per pruning step of every run in `directory`, with the run's fields;
    with `outcomes`, a `test_outcomes` column too (bytes, or None for older rows), and an
    `eval_outcomes.NAME` beside each evaluation."""
    store = open_existing(directory)
    steps = store.steps_with_runs()
    if outcomes:
        steps = steps.merge(store.outcomes(), on=["run_id", "step"], how="left")
        steps["test_outcomes"] = steps["test_outcomes"].astype(object)
    runs = _mark_outdated(store.frame("runs").drop(columns="digest"))
    steps = steps.drop(columns="status").merge(runs[["run_id", "status"]], on="run_id", how="left")
    runs = runs.rename(columns={"target": "run_target"})
    extra = ["run_id", *(c for c in runs.columns if c not in steps.columns)]
    df = with_evaluations(steps.merge(runs[extra], on="run_id", how="left"), store, outcomes)
    stepless = runs[~runs["run_id"].isin(steps["run_id"])]
    if stepless.empty:
        return df
    # Integer step columns become nullable so that the step-less rows do not turn them to floats.
    ints = {c: "Int64" for c in df.columns if pd.api.types.is_integer_dtype(df[c])}
    parts = [part.astype(ints) for part in (df, stepless.reindex(columns=df.columns))]
    return pd.concat([p for p in parts if not p.empty], ignore_index=True)


def _mark_outdated(runs: pd.DataFrame) -> pd.DataFrame:
    """Adaptive runs whose stored id is not the one this version gives their config."""
    adaptive = runs["regime"] == "adaptive"
    stale = [
        i
        for i in runs.index[adaptive]
        if not made_by_this_version(runs.at[i, "run_id"], runs.at[i, "config_json"])
    ]
    runs = runs.copy()
    runs.loc[stale, "status"] = OUTDATED
    runs.loc[stale, "error"] = OUTDATED_REASON
    return runs


def with_evaluations(df: pd.DataFrame, store: Store, outcomes: bool = False) -> pd.DataFrame:
    """`df` with one `eval.NAME` column per evaluation stored for its steps (step_metrics, by
    step key: runs that share a step show the same value) and `dense_eval.NAME` for the run's
    dense model; a name evaluated under several settings (a changed text file, limit, ...)
    shows the latest. With `outcomes`, `eval_outcomes.NAME` too: the per-example outcomes
    (bytes) of that latest value, or None."""
    latest: dict[tuple[str, str], dict] = {}
    for row in store.step_metrics():  # oldest first: the latest wins
        latest[(row["step_key"], row["name"])] = row
    if df.empty or not latest:
        return df

    def column(keys, name: str, field: str) -> list:
        return [latest[(k, name)][field] if (k, name) in latest else None for k in keys]

    names = sorted({name for _, name in latest})
    dense_keys = [dense_key(b) for b in df["base_id"]]
    columns = {
        **{f"{EVAL_PREFIX}{n}": column(df["step_key"], n, "value") for n in names},
        **{f"{DENSE_EVAL_PREFIX}{n}": column(dense_keys, n, "value") for n in names},
    }
    parts = [df, pd.DataFrame(columns, index=df.index, dtype=float)]
    if outcomes:
        blobs = {f"{EVAL_OUTCOMES_PREFIX}{n}": column(df["step_key"], n, "outcomes") for n in names}
        parts.append(pd.DataFrame(blobs, index=df.index, dtype=object))
    return pd.concat(parts, axis=1)


def require_runs(df: pd.DataFrame, directory: Path | str) -> pd.DataFrame:
    """`df` itself; none is an error, not an empty page that looks like a finished command."""
    if df.empty:
        raise PrunebenchError(
            f"'{directory}' holds no runs yet; fill it with `prunebench run` or "
            f"`prunebench sweep` with --results {directory}"
        )
    return df


def find_run(df: pd.DataFrame, prefix: str) -> str:
    """The id of the one run whose id starts with `prefix` (what users type; "" picks the
    only run of a directory that holds one)."""
    ids = sorted({str(r) for r in df["run_id"] if str(r).startswith(prefix)})
    if not prefix and len(ids) > 1:
        raise PrunebenchError(
            f"these results hold {len(ids)} runs: pick one with --run ID (`prunebench results` "
            "lists them)"
        )
    if not ids:
        raise PrunebenchError(
            f"no run '{prefix}' in these results; list them with `prunebench results`"
        )
    if len(ids) > 1:
        raise PrunebenchError(f"run id prefix '{prefix}' is ambiguous ({len(ids)} runs); give more")
    return ids[0]


def empty_layers(directory: Path | str, df: pd.DataFrame) -> dict[str, list[str]]:
    """run id -> the prunable weights reduced to nothing (all-zero keep mask) at its last
    stored step, read from the masks of that step's checkpoint (a missing or unreadable file:
    not judged; `verify` is where a damaged file is reported, not a table's side note)."""
    out: dict[str, list[str]] = {}
    if df.empty or "step_key" not in df:
        return out
    steps = df[df["step"].notna() & df["step_key"].notna()]
    for run_id, rows in steps.groupby("run_id", sort=False):
        path = checkpoint_path(Path(directory), rows.loc[rows["step"].idxmax(), "step_key"])
        if not path.exists():
            continue
        try:
            with safe_open(str(path), framework="pt") as stored:
                names = [k for k in stored.keys() if k.startswith(MASKS)]  # noqa: SIM118
                empty = [k.removeprefix(MASKS) for k in names if not stored.get_tensor(k).any()]
        except (SafetensorError, OSError):
            continue
        if empty:
            out[str(run_id)] = sorted(empty)
    return out
