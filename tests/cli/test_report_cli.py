"""`prunebench report` and `prunebench results` through the real entry point; load_results."""

from __future__ import annotations

import io
import sys

import pandas as pd
import pytest

from prunebench.store.database import Store
from prunebench.store.results import load_results
from report_db import add_run


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    store = Store(root)
    for seed, value in enumerate([0.9, 0.92]):
        add_run(store, "one_shot", 0.5, seed, value)
        add_run(store, "geometric", 0.5, seed, value - 0.05)
    add_run(store, "constant", 0.9, 0, 0.0, status="failed", steps_written=0, error="OOM on step 1")
    add_run(store, "geometric", 0.9, 0, 0.0, status="failed", steps_written=2, error="NaN loss")
    return root


def test_load_results_shows_failed_runs(results_dir):
    df = load_results(results_dir)
    # one-shot: 1 step x 2 seeds; geometric to 0.5 at rate 0.3: 2 steps x 2; failed: 2 + 1
    assert len(df) == 2 + 4 + 2 + 1
    failed = df[df["status"] == "failed"]
    assert set(failed["error"]) == {"OOM on step 1", "NaN loss"}
    stepless = failed[failed["error"] == "OOM on step 1"]
    assert len(stepless) == 1 and stepless["step"].isna().all()
    assert str(df["step"].dtype) == "Int64"  # not turned into floats by the step-less row
    assert {"config_json", "schedule_json", "finished_at"} <= set(df.columns)


def test_report_command_prints_the_path(results_dir, cli, tmp_path):
    done = cli("report", str(results_dir), "--out", str(tmp_path / "rep"), "--figures", "png")
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == f"report: {tmp_path / 'rep' / 'report.html'}"
    assert (tmp_path / "rep" / "report.md").exists()
    assert (tmp_path / "rep" / "figures" / "regime_comparison.png").exists()
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "OOM on step 1" in html and "NaN loss" in html


def test_a_refused_report_write_is_one_line_and_leaves_no_part(
    results_dir, invoke, monkeypatch, tmp_path
):
    """The --out checks cannot foresee everything (a full disk, /proc): the write itself is one
    line, exit 1 (the system refused), and no temp file stays behind."""
    from pathlib import Path

    real = Path.write_bytes

    def refuse_html(path, data):
        if path.name.startswith(".report.html"):
            real(path, data[:10])  # half-written, then the disk is full
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(Path, "write_bytes", refuse_html)
    out = tmp_path / "rep"
    code, _, err = invoke("report", str(results_dir), "--out", str(out), "--figures", "svg")
    assert code == 1
    assert err.strip() == f"error: cannot write '{out / 'report.html'}': No space left on device"
    left = {p.name for p in out.rglob("*")}
    assert "report.html" not in left and "report.md" not in left
    assert not any(name.startswith(".") for name in left)


def run_main(monkeypatch, *args: str) -> int:
    """The CLI's `main()` in-process, for binary stdout (the `invoke` fixture decodes text)."""
    from prunebench.cli.app import main

    monkeypatch.setattr(sys, "argv", ["prunebench", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "{missing}"], "holds no results.sqlite"),
        (["report", "{dir}", "--figures", "gif"], "--figures must be png or svg, not 'gif'"),
        (["results", "{dir}", "--format", "xml"], "--format must be table, csv, json or parquet"),
        (["results", "{missing}", "--format", "csv"], "holds no results.sqlite"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(results_dir, invoke, tmp_path, args, message):
    args = [a.format(dir=results_dir, missing=tmp_path / "nothing") for a in args]
    code, _, err = invoke(*args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "nothing").exists()


def normalised(df: pd.DataFrame) -> pd.DataFrame:
    """Missing values as None everywhere (parquet reads an object column's NaN back as None)."""
    return df.astype(object).where(df.notna(), None)


def test_parquet_export_round_trips(results_dir, monkeypatch, capsysbinary, tmp_path):
    expected = normalised(load_results(results_dir))
    args = ["results", str(results_dir), "--format", "parquet"]
    assert run_main(monkeypatch, *args) == 0
    to_stdout = capsysbinary.readouterr().out
    assert run_main(monkeypatch, *args, "-o", str(tmp_path / "r.parquet")) == 0
    for data in (to_stdout, (tmp_path / "r.parquet").read_bytes()):
        got = normalised(pd.read_parquet(io.BytesIO(data)))
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_csv_lists_the_failed_runs(results_dir, invoke):
    code, out, _ = invoke("results", str(results_dir), "--format", "csv")
    assert code == 0
    df = pd.read_csv(io.StringIO(out))
    assert sorted(df.loc[df["status"] == "failed", "error"].unique()) == [
        "NaN loss",
        "OOM on step 1",
    ]


def test_results_to_a_file_is_written_whole(results_dir, invoke, monkeypatch, tmp_path):
    """`results -o` goes through the same whole-file write as reports and exports."""
    from pathlib import Path

    real = Path.write_bytes

    def refuse(path, data):
        real(path, data[:10])
        raise OSError(28, "No space left on device")

    target = tmp_path / "rows.csv"
    target.write_text("old\n")
    monkeypatch.setattr(Path, "write_bytes", refuse)
    code, _, err = invoke("results", str(results_dir), "--format", "csv", "-o", str(target))
    assert code == 1
    assert err.strip() == f"error: cannot write '{target}': No space left on device"
    assert target.read_text() == "old\n"  # the old file, not a part of the new one
    assert [p.name for p in tmp_path.iterdir()] == ["rows.csv"]
