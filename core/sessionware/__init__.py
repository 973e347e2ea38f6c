"""Server-side sessions for ASGI apps, with storage plugins found by name."""

from ._errors import SessionwareError, StorageError, StorageLoadError, StorageNotFoundError
from .hookspecs import hookimpl

__all__ = [
    "SessionwareError",
    "StorageError",
    "StorageLoadError",
    "StorageNotFoundError",
    "hookimpl",
]
