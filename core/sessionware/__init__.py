"""Server-side sessions for ASGI apps, with storage plugins found by name."""

from ._config import Config, Source
from ._errors import SessionwareError, StorageError, StorageLoadError, StorageNotFoundError
from ._middleware import SessionMiddleware
from ._session import Session
from ._session_info import SessionInfo
from ._store import Store
from .hookspecs import hookimpl

__all__ = [
    "Config",
    "Session",
    "SessionInfo",
    "SessionMiddleware",
    "SessionwareError",
    "Source",
    "StorageError",
    "StorageLoadError",
    "StorageNotFoundError",
    "Store",
    "hookimpl",
]
