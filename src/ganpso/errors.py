"""User-facing errors: the CLI prints ``str(error)`` on one line and exits with code 2."""


class GanpsoError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(GanpsoError):
    """Unreadable or malformed data; the message names the file and the problem."""


class CheckpointError(GanpsoError):
    """A checkpoint that is missing, corrupt, tampered with or from an incompatible model."""


class ConfigError(GanpsoError):
    """A config file or option that does not parse or names unknown keys."""
