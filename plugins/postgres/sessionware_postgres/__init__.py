"""PostgreSQL storage for sessionware: sessions in one table of the database you already run."""

from ._config import PostgresConfig
from ._storage import PostgresStorage

__all__ = ["PostgresConfig", "PostgresStorage"]
