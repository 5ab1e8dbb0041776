"""User-facing errors: the CLI prints their message as one line and exits with code 2."""

import re


class PrunebenchError(Exception):
    """A problem the user can fix (bad config, missing file, unknown name). Never a bug."""


# Characters str.splitlines() breaks on: a message quoting user input must stay one line.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_ESCAPES = {ord(c): repr(c)[1:-1] for c in LINE_BREAKS}


# Words of advice to load a file in a way that can run code from it (torch's and numpy's own
# messages give such advice when a safe load refuses a file): prunebench never unpickles user
# files, and its messages never pass that advice on.
UNSAFE_ADVICE = (
    "weights_only", "allow_pickle", "pickle.load", "unsafe", "trust", "arbitrary code",
    "safe_globals",
)  # fmt: skip
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")


def without_unsafe_advice(text: str) -> str:
    """`text` without the sentences that advise an unsafe load ('' when nothing else is left)."""
    sentences = _SENTENCES.split(_ANSI.sub("", text))
    kept = [s for s in sentences if s.strip() and not any(w in s.lower() for w in UNSAFE_ADVICE)]
    return " ".join(s.strip() for s in kept)


def one_line(text: str) -> str:
    """`text` with its line breaks escaped (a key 'a<newline>b' shows as 'a\\nb')."""
    return text.translate(_ESCAPES)


class ConfigError(PrunebenchError):
    """The configuration is invalid; the message names the key and the fix. It is one line
    even when it quotes a key or value holding line breaks."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


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
