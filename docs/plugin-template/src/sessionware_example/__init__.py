"""An example sessionware storage: sessions in one table of an SQLite file."""

from ._config import ExampleConfig
from ._storage import ExampleStorage

__all__ = ["ExampleConfig", "ExampleStorage"]
