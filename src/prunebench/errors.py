"""User-facing errors: the CLI prints their message as one line and exits with code 2."""


class PrunebenchError(Exception):
    """A problem the user can fix (bad config, missing file, unknown name). Never a bug."""


class ConfigError(PrunebenchError):
    """The configuration is invalid; the message names the key and the fix."""


class ScheduleError(PrunebenchError, ValueError):
    """Impossible schedule arguments (target outside (0, 1), first >= target, rate <= 0, ...)."""


class CheckpointError(PrunebenchError):
    """A weights file is missing, unreadable, tampered with, or does not fit the model."""


class ChecksumMismatch(CheckpointError):
    """A file of the results directory differs from the sha256 recorded when it was written."""


class DamagedDatabase(PrunebenchError):
    """results.sqlite cannot be read as a database (truncated, garbled)."""


class StorageError(PrunebenchError):
    """The results directory cannot be written (disk full, read-only, I/O error): nothing was
    half-written, and running the same command again resumes once that is fixed."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run is recorded as failed."""
