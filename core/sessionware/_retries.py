"""R21's pace after a lost compare-and-set: a jittered pause that doubles, within a budget of
time rather than a count of attempts, so that fifty saves of one session at once all land."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Final

from ._errors import StorageError

#: How long one change keeps retrying a lost compare-and-set before it gives up.
BUDGET: Final = 5.0
_FIRST_PAUSE: Final = 0.001
_LONGEST_PAUSE: Final = 0.05


class Retries:
    """The attempts of one change: `await retries.pause()` after each lost compare-and-set."""

    __slots__ = ("_backend", "_deadline", "_failure", "_pause")

    def __init__(self, backend: str, failure: str) -> None:
        self._backend = backend
        self._failure = failure  # what could not be done, and why, for the error
        self._deadline = time.monotonic() + BUDGET
        self._pause = _FIRST_PAUSE

    async def pause(self) -> None:
        """Wait a jittered while before the next attempt; StorageError once the budget is
        spent, naming the backend and what could not be done."""
        if time.monotonic() > self._deadline:
            raise StorageError(
                f"{self._backend} storage: could not {self._failure} at every attempt for "
                f"{BUDGET:g} s",
                backend=self._backend,
            )
        await asyncio.sleep(random.uniform(0, self._pause))
        self._pause = min(self._pause * 2, _LONGEST_PAUSE)
