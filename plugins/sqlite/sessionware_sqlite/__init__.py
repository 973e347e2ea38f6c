"""SQLite storage for sessionware: sessions that survive restarts, no server to run."""

from ._config import SQLiteConfig
from ._storage import SQLiteStorage

__all__ = ["SQLiteConfig", "SQLiteStorage"]
