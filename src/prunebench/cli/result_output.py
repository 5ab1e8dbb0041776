"""How stored results leave the command line: per-run records for the failure tables, and a
`load_results` frame as csv, json or parquet bytes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def run_records(df: pd.DataFrame) -> list[dict]:
    """One record per run of a `load_results` frame: its run fields (status, error, its final
    target as `target`), missing values as None."""
    runs = df.drop_duplicates("run_id")
    runs = runs.astype(object).where(runs.notna(), None)
    return [{**r, "target": r["run_target"]} for r in runs.to_dict("records")]


def serialised(df: pd.DataFrame, fmt: str) -> bytes:
    """The frame in `fmt` (csv, json or parquet), one row per step, as the file's bytes."""
    if fmt == "parquet":
        return df.to_parquet(index=False)
    if fmt == "csv":
        return df.to_csv(index=False).encode()
    return (df.to_json(orient="records", indent=1) + "\n").encode()
