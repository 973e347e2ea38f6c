"""Saves of one session within one process take turns, instead of racing each other (R21).

Two requests of the same process saving one session at the same moment would both read the
record and one compare-and-set would lose, to re-read and retry. Taking turns per storage key
avoids that: the second save waits for the first and starts from what it wrote. Across
processes, compare-and-set still decides.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Turn:
    """One key's queue of savers; `latest` is what the last of them stored, if any."""

    __slots__ = ("latest", "waiting")

    def __init__(self) -> None:
        self.latest: bytes | None = None
        self.waiting: deque[asyncio.Future[None]] | None = None


class SaveTurns:
    """Turns per key. Uncontended, taking one costs two dictionary operations: the `Turn`
    given back last is kept for the next claim (nearly every save claims one)."""

    __slots__ = ("_spare", "_turns")

    def __init__(self) -> None:
        self._turns: dict[str, Turn] = {}
        self._spare: Turn | None = None

    def claim(self, key: str) -> Turn | None:
        """The turn of `key` when nobody holds it (no waiting), else None: then `take`."""
        turns = self._turns
        if key in turns:
            return None
        turn = self._spare
        if turn is None:
            turn = Turn()
        else:
            self._spare = None
        turns[key] = turn
        return turn

    async def take(self, key: str) -> Turn:
        """Wait for the turn of `key`."""
        turn = self.claim(key)
        if turn is not None:
            return turn
        turn = self._turns[key]
        if turn.waiting is None:
            turn.waiting = deque()
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        turn.waiting.append(ready)
        try:
            await ready
        except asyncio.CancelledError:
            if ready.done() and not ready.cancelled():  # handed the turn, then cancelled
                self.give_back(key, turn)
            raise
        return turn

    def give_back(self, key: str, turn: Turn) -> None:
        """Hand the turn to the next saver waiting; the caller no longer holds it."""
        waiting = turn.waiting
        while waiting:
            ready = waiting.popleft()
            if not ready.done():
                ready.set_result(None)
                return
        del self._turns[key]
        turn.latest = None
        turn.waiting = None
        self._spare = turn
