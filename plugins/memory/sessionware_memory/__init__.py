"""In-process memory storage for sessionware: the default, and the model for other plugins."""

from ._config import MemoryConfig
from ._storage import MemoryStorage

__all__ = ["MemoryConfig", "MemoryStorage"]
