"""The `prunebench` command: a thin typer app over the library."""
