"""The project's error types: each carries one message meant for a person."""


class StudyError(Exception):
    """Base class: a stage prints the message and exits non-zero."""


class ConfigError(StudyError):
    """params.yaml has an unknown key, a wrong type or an out-of-range value."""


class DataError(StudyError):
    """A data file is missing, truncated, corrupt or does not match its checksum."""


class DivergenceError(StudyError):
    """Training produced a non-finite loss."""
