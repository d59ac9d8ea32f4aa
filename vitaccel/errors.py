"""Exception types shared by every vitaccel stage."""

__all__ = ["UsageError", "VitaccelError"]


class VitaccelError(Exception):
    """Base class of vitaccel's own errors; the message is one line that names the culprit."""


class UsageError(VitaccelError, ValueError):
    """Bad user input (file, key, argument); the CLI turns it into exit code 2."""
