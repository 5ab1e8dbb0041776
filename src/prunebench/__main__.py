"""`python -m prunebench ...` is the same as the `prunebench` command."""

from prunebench.cli.app import main

if __name__ == "__main__":  # not when a spawned worker process imports it
    main()
