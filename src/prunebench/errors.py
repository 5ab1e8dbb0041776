"""User-facing errors: the CLI prints their message as one line and exits with code 2."""


class PrunebenchError(Exception):
    """A problem the user can fix (bad config, missing file, unknown name). Never a bug."""


# Characters str.splitlines() breaks on: a message quoting user input must stay one line.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_ESCAPES = {ord(c): repr(c)[1:-1] for c in LINE_BREAKS}


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


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run is recorded as failed."""
