"""The `prunebench` command: a thin typer layer over the library.

The app registers each command group's commands (in the order --help lists them) and turns
errors into exit codes. User errors (bad config, unknown names, missing files) print one line
and exit with code 2, before anything is computed or written.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from prunebench.cli import discovery, exporting, reading, running
from prunebench.cli.base import Group, Typer, out
from prunebench.errors import PrunebenchError, StorageError, TrainingDiverged, one_line

app = Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings reflow: a single newline is a space
    help="Benchmark pruning regimes: one-shot, iterative constant/geometric and hybrid.",
)


def _version(value: bool) -> None:
    if value:
        from prunebench import __version__

        out.print(f"prunebench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Benchmark pruning regimes: one-shot, iterative constant/geometric and hybrid."""


app.command()(discovery.schedule)
app.command()(running.pretrain)
app.command()(running.run)
app.command()(running.sweep)
app.command()(reading.results)
app.command()(reading.report)
app.command()(reading.advise)
app.command()(exporting.export)
app.command("list")(discovery.list_)
config_app = typer.Typer(no_args_is_help=True, help="Inspect run configs.")
app.add_typer(config_app, name="config")
config_app.command("show")(discovery.config_show)
app.command()(reading.verify)


def _error(message: str, code: int = 2) -> None:
    Console(stderr=True).print(
        f"[red]error:[/] {escape(one_line(message))}", highlight=False, soft_wrap=True
    )
    sys.exit(code)


def _usage_error(exc: typer.TyperException) -> None:
    """A bad option or argument that typer caught while parsing: one line, like our own errors
    (typer's own display is a usage line, a hint and a framed box)."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # `prunebench` alone: the help was printed
        sys.exit(2)
    command = ctx.command_path if ctx is not None else "prunebench"
    _error(f"{exc.format_message()} (see {command} --help)")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        _usage_error(exc)
    except StorageError as exc:  # the runs are recorded as failed; the next invocation resumes
        _error(str(exc), code=1)
    except typer.Abort:
        Console(stderr=True).print("Aborted!")
        sys.exit(1)
    except PrunebenchError as exc:
        _error(str(exc))
    except TrainingDiverged as exc:
        Console(stderr=True).print(f"[red]training diverged:[/] {exc}", highlight=False)
        sys.exit(1)
    if code == 130:  # Ctrl-C: typer returns 130
        Console(stderr=True, soft_wrap=True).print(
            "interrupted; run the same command again to resume", highlight=False
        )
    if isinstance(code, int) and code:  # typer.Exit(n) and Ctrl-C (130) return their code
        sys.exit(code)


if __name__ == "__main__":
    main()
