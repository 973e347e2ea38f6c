"""The exceptions sessionware raises; every one derives from `SessionwareError`."""

from __future__ import annotations


class SessionwareError(Exception):
    """Base class, so an application can catch everything sessionware raises at once."""


class StorageError(SessionwareError):
    """A storage backend failed; the backend's own exception is the `__cause__`."""

    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class StorageNotFoundError(SessionwareError, LookupError):
    """No installed storage plugin answers to the requested name."""


class StorageLoadError(SessionwareError, ImportError):
    """A storage plugin is installed but could not be loaded."""
