"""Where to log: `mlflow`, `mlflow=URI`, `tensorboard` or `tensorboard=DIR` (the `--log` option
and the config's `log:` key). Light on purpose: config validation imports it.

A destination only says where results are copied to; it never changes a run's id.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from prunebench.errors import PrunebenchError

# backend -> (the module it needs, the extra that installs it)
BACKENDS = {"mlflow": ("mlflow", "track"), "tensorboard": ("tensorboard", "track")}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class LogSpec:
    backend: str
    location: str | None = None  # None: the default beside the results (see Store.log_dir)

    def __str__(self) -> str:
        return self.backend if self.location is None else f"{self.backend}={self.location}"


def parse_log(text: str) -> LogSpec:
    """'mlflow', 'mlflow=http://127.0.0.1:5000', 'tensorboard=runs/tb' -> LogSpec."""
    backend, sep, location = str(text).partition("=")
    backend = backend.strip().lower()
    if backend not in BACKENDS:
        raise PrunebenchError(
            f"--log: unknown backend '{backend}' (known: {', '.join(BACKENDS)}); "
            "e.g. --log mlflow, --log mlflow=http://127.0.0.1:5000 or --log tensorboard=runs/tb"
        )
    location = location.strip()
    if sep and not location:
        raise PrunebenchError(f"--log {backend}= needs a location after '=', or none at all")
    return LogSpec(backend, location or None)


def is_local(location: str) -> bool:
    """A path or a file: URI (checked and written here), not a server."""
    return location.startswith("file:") or not _SCHEME.match(location)


def local_path(location: str) -> Path:
    return Path(location.removeprefix("file://").removeprefix("file:")).expanduser()


def check_installed(spec: LogSpec) -> None:
    module, extra = BACKENDS[spec.backend]
    if importlib.util.find_spec(module) is None:
        raise PrunebenchError(
            f"--log {spec.backend} needs the '{module}' package: "
            f"pip install 'prunebench[{extra}]' (or pip install {module})"
        )


def check_writable(spec: LogSpec, location: str) -> None:
    """A local destination must be a directory we can create or write (checked before any
    compute, so that a typo fails at once rather than after the first step)."""
    if not is_local(location):
        return
    path = local_path(location).absolute()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise PrunebenchError(f"--log {spec.backend}: '{probe}' is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PrunebenchError(f"--log {spec.backend}: '{probe}' is not writable; pick another")
