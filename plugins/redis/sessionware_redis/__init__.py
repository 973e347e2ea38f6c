"""Redis storage for sessionware: one server, Redis Sentinel or Redis Cluster."""

from ._config import RedisConfig
from ._storage import RedisStorage

__all__ = ["RedisConfig", "RedisStorage"]
