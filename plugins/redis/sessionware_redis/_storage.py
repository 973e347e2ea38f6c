"""Sessions in Redis: GET to load, SET with PX to save, UNLINK to delete, and a compare-and-set
that is one conditional command (SET NX, or a short script) per call."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

import pluggy
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from ._commands import Commands
from ._config import RedisConfig
from ._deployments import commands_builder
from ._event_loops import PerLoop

hookimpl = pluggy.HookimplMarker("sessionware")

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")

# KEYS[1]: the key; ARGV: the expected value, the new value, the TTL in ms ("" for none).
# A missing key reads as false, which equals no string: only a live, equal value is replaced.
REPLACE_IF_EQUAL = b"""\
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""
REPLACE_IF_EQUAL_SHA = hashlib.sha1(REPLACE_IF_EQUAL).hexdigest()


def match_pattern(prefix: str) -> str:
    """A SCAN MATCH pattern for every key under `prefix`, taking its characters literally."""
    return _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"


def milliseconds(expires_in: float) -> int:
    """A TTL in whole milliseconds, rounded up and never 0 (PX 0 is an error, not 'now')."""
    # A nanosecond of slack absorbs float error: 4.03 * 1000 is 4030.0000000000005.
    return max(1, math.ceil(expires_in * 1000 - 1e-6))


class RedisStorage:
    """Sessions in Redis (one server, Sentinel or Cluster), each key under `key_prefix`."""

    name = "redis"

    def __init__(
        self,
        *,
        url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        db: int | None = None,
        username: str | None = None,
        password: str | None = None,
        ssl: bool | None = None,
        client: Redis | RedisCluster | None = None,
        cluster: bool | None = None,
        sentinels: Sequence[str | tuple[str, int]] | None = None,
        master_name: str | None = None,
        key_prefix: str | None = None,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.config = RedisConfig.from_options(
            url=url,
            host=host,
            port=port,
            db=db,
            username=username,
            password=password,
            ssl=ssl,
            client=client,
            cluster=cluster,
            sentinels=sentinels,
            master_name=master_name,
            key_prefix=key_prefix,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
        )
        self._prefix = self.config.key_prefix
        self._commands: PerLoop[Commands] = PerLoop(commands_builder(self.config))

    def __repr__(self) -> str:
        return f"<RedisStorage {self.config.mode} key_prefix={self._prefix!r}>"

    @property
    def client(self) -> Redis | RedisCluster | None:
        """The redis-py client given as `client`; None when the storage connects itself."""
        return self.config.client

    @hookimpl
    async def storage_get(self, key: str) -> bytes | None:
        commands = self._commands.here() or await self._commands.enter()
        value: bytes | None = await commands.run("GET", self._prefix + key)
        return value  # bytes: the client never decodes

    @hookimpl
    async def storage_set(self, key: str, value: bytes, expires_in: float | None) -> None:
        if type(value) is not bytes:
            value = bytes(value)  # a mutable buffer is copied before the await
        commands = self._commands.here() or await self._commands.enter()
        if expires_in is None:
            await commands.run("SET", self._prefix + key, value)
        else:
            await commands.run("SET", self._prefix + key, value, "PX", milliseconds(expires_in))

    @hookimpl
    async def storage_compare_and_set(
        self, key: str, expected: bytes | None, value: bytes, expires_in: float | None
    ) -> bool:
        """One command: `SET NX` where nothing may be live, else the script, by its SHA1.

        The command is never sent twice. When its connection breaks before the reply, it may
        or may not have run, so the key is read again: holding what was written, it counts
        as done; holding anything else, as not done (the caller reads and tries again).
        """
        if type(value) is not bytes:
            value = bytes(value)
        name = self._prefix + key
        commands = self._commands.here() or await self._commands.enter()
        try:
            if expected is None:
                if expires_in is None:
                    reply = await commands.run_once(name, "SET", name, value, "NX")
                else:
                    ttl = milliseconds(expires_in)
                    reply = await commands.run_once(name, "SET", name, value, "NX", "PX", ttl)
            else:
                expected = bytes(expected)
                reply = await self._replace_if_equal(commands, name, expected, value, expires_in)
        except RedisConnectionError:
            return bool(await commands.run("GET", name) == value)
        return bool(reply)  # SET NX: b"OK" (True through a client) or None; the script: 1 or 0

    @hookimpl
    async def storage_delete(self, key: str) -> None:
        commands = self._commands.here() or await self._commands.enter()
        await commands.run("UNLINK", self._prefix + key)

    @hookimpl
    async def storage_reset(self) -> None:
        """SCAN for this storage's keys and UNLINK them on every master; never a FLUSHDB."""
        commands = self._commands.here() or await self._commands.enter()
        await commands.reset(match_pattern(self._prefix))

    @hookimpl
    async def storage_close(self) -> None:
        """Close what the plugin opened (a `client` given to it stays open); idempotent."""
        await self._commands.close()

    @staticmethod
    async def _replace_if_equal(
        commands: Commands, name: str, expected: bytes, value: bytes, expires_in: float | None
    ) -> object:
        """The script by its SHA1; a server (or cluster node) that does not know it yet, or
        no longer after a restart or SCRIPT FLUSH, says NOSCRIPT without running anything,
        and gets the script itself, which it then keeps."""
        ttl = b"" if expires_in is None else milliseconds(expires_in)
        arguments = (1, name, expected, value, ttl)
        try:
            return await commands.run_once(name, "EVALSHA", REPLACE_IF_EQUAL_SHA, *arguments)
        except NoScriptError:
            return await commands.run_once(name, "EVAL", REPLACE_IF_EQUAL, *arguments)
