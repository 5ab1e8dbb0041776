"""What the commands share: typer's help workarounds, the options several commands take, the
console they print to, and the checks of those options.

Command modules import from here; `cli/app.py` registers their commands on the app and runs it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup


def _flags_without_type(params: list) -> list:
    """Boolean flags take no value: --help shows none for them (typer would print <bool>)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))


class Typer(typer.Typer):
    """Commands whose --help lists flags without a value type."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or _Command, **kwargs)


out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
DEFAULT_RESULTS = Path("results")

ResultsOpt = Annotated[Path, typer.Option("--results", "-r", help="results directory")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", metavar="KEY=VALUE", help="override a config key: a.b=value"),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no live progress display")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto, cpu or cuda (overrides the config)")
]
LogOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--log",
        help="also log to mlflow[=URI] or tensorboard[=DIR] (default: beside the results); "
        "repeatable; needs pip install 'prunebench[track]'",
    ),
]
DirectoryArg = Annotated[Path, typer.Argument(help="results directory")]


def check_log(values: list[str] | None, results: Path) -> list[str]:
    """Bad --log values fail before any compute (one line, exit 2)."""
    from prunebench.store.database import Store
    from prunebench.tracking.hub import check
    from prunebench.tracking.spec import parse_log

    values = list(values or [])
    if values:
        check([parse_log(v) for v in values], Store(results).log_dir)
    return values


def overrides(values: list[str] | None, device: str | None) -> list[str]:
    """The --set values, with --device as one more."""
    values = list(values or [])
    if device is not None:
        values.append(f"device={device}")
    return values


def warn_integrity(directory: Path) -> None:
    """A damaged results directory is a warning on stderr: what is readable is still shown."""
    from prunebench.store.results import integrity_warning

    warning = integrity_warning(directory)
    if warning:
        Console(stderr=True, soft_wrap=True).print(
            f"warning: {warning}", style="yellow", markup=False, highlight=False
        )


def warn_sanity(df, directory: Path | str | None = None) -> None:
    """Dense models at chance, collapsed runs and (given the results `directory`) layers
    reduced to nothing, loudly on stderr (report/sanity.py)."""
    from prunebench.report.sanity import sanity_warnings

    lines = sanity_warnings(df, directory)
    if lines:
        err = Console(stderr=True, soft_wrap=True)
        for line in lines:
            err.print(f"warning: {line}", style="bold yellow", markup=False, highlight=False)
