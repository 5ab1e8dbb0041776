"""`python -m prunebench ...` is the same as the `prunebench` command."""

from prunebench.cli import main

main()
