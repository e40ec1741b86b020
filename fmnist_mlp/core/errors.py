"""The project's error types, each carrying one message meant for a person, and ``os_error``:
the one line of an operating-system error."""


class StudyError(Exception):
    """Base class: a stage prints the message and exits non-zero."""


class ConfigError(StudyError):
    """params.yaml has an unknown key, a wrong type or an out-of-range value."""


class DataError(StudyError):
    """A data file is missing, truncated, corrupt or does not match its checksum."""


class DivergenceError(StudyError):
    """Training produced a non-finite loss."""


def os_error(e: OSError, paths=()) -> str:
    """``PATH: reason`` of an operating-system error (the outputs' paths when it names none)."""
    where = e.filename or ", ".join(map(str, paths)) or "a file"
    reason = e.strerror or str(e) or type(e).__name__
    return f"{where}: {reason}" + (f" (errno {e.errno})" if e.errno else "")
