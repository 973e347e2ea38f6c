"""What each way of reaching Redis offers the storage, for the event loop it was built on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

# Keys asked for per SCAN step, and so at most this many per UNLINK.
SCAN_BATCH = 500


class Commands(Protocol):
    """Commands to one deployment (a server, a Sentinel master, a Cluster) from one loop."""

    async def run(self, *args: Any) -> Any:
        """Send a command that is safe to repeat (GET, SET, UNLINK, SCAN): one whose
        connection broke before the reply came is sent once more on a fresh connection."""
        ...

    async def run_once(self, key: str, *args: Any) -> Any:
        """Send a command at most once: a broken connection raises redis-py's
        ConnectionError and leaves the caller to find out what happened. `key` is the key
        the command touches (a cluster sends the command to its node)."""
        ...

    async def reset(self, pattern: str) -> None:
        """UNLINK every key matching `pattern` on every master, found with SCAN."""
        ...

    async def start(self) -> None:
        """Get ready to serve the running loop; called once, before the first command."""
        ...

    async def loop_ended(self) -> None:
        """The loop is ending: release what was opened on it (it cannot serve another)."""
        ...

    async def aclose(self) -> None:
        """The storage is closing: close what the storage opened itself."""
        ...


async def scan_and_unlink(run: Callable[..., Awaitable[Any]], pattern: str) -> None:
    """Walk one server's keys under `pattern` with SCAN, UNLINKing each batch found."""
    cursor = 0
    while True:
        reply = await run("SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_BATCH)
        cursor, keys = int(reply[0]), reply[1]  # raw (b"17", [...]) or parsed (17, [...])
        if keys:
            await run("UNLINK", *keys)
        if cursor == 0:
            return
