"""Memcached storage for sessionware, on pymemcache: one server or several by hashing."""

from ._config import MemcacheConfig
from ._servers import ServerDownError
from ._storage import MemcacheStorage

__all__ = ["MemcacheConfig", "MemcacheStorage", "ServerDownError"]
