"""Compare-and-set beyond the conformance suite: the commands it sends, a lost reply, two
processes racing, and the script loaded again where a server no longer has it.

A reply lost after the server ran the command cannot be made by a real server on demand,
so `LostReply` injects it: the reply is read from the real server, then the connection is
dropped and the caller sees the ConnectionError a dropped connection gives.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from sessionware.testing import StorageCalls
from sessionware_redis import RedisStorage

from tests.support.redis_servers import RedisClusterServers, RedisSentinel, RedisServer

from .support import unique_prefix

DEADLINE = 30.0


class LostReply:
    """Drops the connection of the next `command` sent once its reply has arrived.

    `meanwhile`, when given, runs between the reply's arrival and the drop: another
    client's write that the caller must not overwrite.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: dict[str, int] = {}
        self._armed: str | None = None
        self._packet: object = None  # the armed command, packed
        self._doomed: set[int] = set()  # connections whose next reply is lost
        self._meanwhile: Callable[[], Awaitable[object]] | None = None
        pack = AbstractConnection.pack_command
        send = AbstractConnection.send_packed_command
        read = AbstractConnection.read_response
        injector = self

        def pack_command(connection: AbstractConnection, *args: Any) -> Any:
            name = (args[0].decode() if isinstance(args[0], bytes) else str(args[0])).upper()
            injector.sent[name] = injector.sent.get(name, 0) + 1
            packet = pack(connection, *args)
            if name == injector._armed:
                injector._armed, injector._packet = None, packet
            return packet

        async def send_packed_command(
            connection: AbstractConnection, command: Any, *args: Any, **kw: Any
        ) -> None:
            await send(connection, command, *args, **kw)  # opens the connection first if need be
            if command is injector._packet:
                injector._packet = None
                injector._doomed.add(id(connection))

        async def read_response(connection: AbstractConnection, *args: Any, **kw: Any) -> Any:
            try:
                reply = await read(connection, *args, **kw)
            except BaseException:
                injector._doomed.discard(id(connection))
                raise
            if id(connection) in injector._doomed:
                injector._doomed.discard(id(connection))
                if injector._meanwhile is not None:
                    await injector._meanwhile()
                await connection.disconnect()
                raise RedisConnectionError("injected: the connection broke before the reply")
            return reply

        monkeypatch.setattr(AbstractConnection, "pack_command", pack_command)
        monkeypatch.setattr(AbstractConnection, "send_packed_command", send_packed_command)
        monkeypatch.setattr(AbstractConnection, "read_response", read_response)

    def arm(self, command: str, meanwhile: Callable[[], Awaitable[object]] | None = None) -> None:
        self._armed, self._meanwhile = command, meanwhile
        self.sent.clear()

    @property
    def struck(self) -> bool:
        return self._armed is None and self._packet is None and not self._doomed


MODES = ["server", "given client", "sentinel", "cluster"]


@pytest_asyncio.fixture(params=MODES)
async def pair(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    redis_sentinel: RedisSentinel,
    redis_cluster: RedisClusterServers,
) -> AsyncIterator[tuple[StorageCalls, Any]]:
    """A storage in each mode, and a plain client of the same keys to look and to meddle."""
    prefix = unique_prefix()
    mode = request.param
    given: Redis | None = None
    admin: Any
    if mode == "server":
        storage = RedisStorage(url=redis_server.url, key_prefix=prefix)
        admin = Redis.from_url(redis_server.url)
    elif mode == "given client":
        given = Redis.from_url(redis_server.url)
        storage = RedisStorage(client=given, key_prefix=prefix)
        admin = Redis.from_url(redis_server.url)
    elif mode == "sentinel":
        storage = RedisStorage(
            sentinels=redis_sentinel.sentinels,
            master_name=redis_sentinel.master_name,
            key_prefix=prefix,
        )
        admin = Redis(host=redis_sentinel.master.host, port=redis_sentinel.master.port)
    else:
        storage = RedisStorage(url=redis_cluster.url, cluster=True, key_prefix=prefix)
        admin = RedisCluster(host=redis_cluster.host, port=redis_cluster.port)
    backend = StorageCalls(storage, "redis")
    try:
        await backend.get("warm-up")  # connections open before any fault is armed
        yield backend, Prefixed(admin, prefix)
    finally:
        await backend.close()
        await admin.aclose()
        if given is not None:
            await given.aclose()


class Prefixed:
    """A plain client that reads and writes the storage's keys by their short names."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self.client.get(self.prefix + key)
        return value

    async def set(self, key: str, value: bytes) -> None:
        await self.client.set(self.prefix + key, value, px=60_000)


@pytest.fixture
def lost(monkeypatch: pytest.MonkeyPatch) -> LostReply:
    return LostReply(monkeypatch)


async def test_a_lost_reply_to_a_script_that_ran_is_read_back_as_done(
    pair: tuple[StorageCalls, Prefixed], lost: LostReply
) -> None:
    backend, admin = pair
    async with asyncio.timeout(DEADLINE):
        await backend.set("k", b"old", 60)
        await backend.compare_and_set("k", b"old", b"old", 60)  # the key's node has the script
        lost.arm("EVALSHA")
        assert await backend.compare_and_set("k", b"old", b"new", 60) is True
        assert lost.struck
        assert lost.sent.get("EVALSHA") == 1  # never resent
        assert "EVAL" not in lost.sent
        assert await admin.get("k") == b"new"


async def test_a_lost_reply_to_set_nx_that_ran_is_read_back_as_done(
    pair: tuple[StorageCalls, Prefixed], lost: LostReply
) -> None:
    backend, admin = pair
    async with asyncio.timeout(DEADLINE):
        lost.arm("SET")
        assert await backend.compare_and_set("fresh", None, b"first", 60) is True
        assert lost.struck
        assert lost.sent.get("SET") == 1
        assert await admin.get("fresh") == b"first"


async def test_a_lost_reply_then_another_write_is_not_done_and_not_overwritten(
    pair: tuple[StorageCalls, Prefixed], lost: LostReply
) -> None:
    backend, admin = pair
    async with asyncio.timeout(DEADLINE):
        await backend.set("k", b"old", 60)
        await backend.compare_and_set("k", b"old", b"old", 60)
        lost.arm("EVALSHA", meanwhile=lambda: admin.set("k", b"theirs"))
        assert await backend.compare_and_set("k", b"old", b"mine", 60) is False
        assert lost.struck
        assert lost.sent.get("EVALSHA") == 1
        assert await admin.get("k") == b"theirs"


async def test_a_lost_reply_to_a_script_that_did_not_replace_is_not_done(
    pair: tuple[StorageCalls, Prefixed], lost: LostReply
) -> None:
    backend, admin = pair
    async with asyncio.timeout(DEADLINE):
        await backend.set("k", b"current", 60)
        await backend.compare_and_set("k", b"current", b"current", 60)
        lost.arm("EVALSHA")
        assert await backend.compare_and_set("k", b"stale", b"lost", 60) is False
        assert lost.struck
        assert lost.sent.get("EVALSHA") == 1
        assert await admin.get("k") == b"current"


async def test_a_lost_reply_to_set_nx_after_a_delete_does_not_resurrect(
    pair: tuple[StorageCalls, Prefixed], lost: LostReply
) -> None:
    """Sent again, SET NX would find the key gone and bring the session back to life."""
    backend, admin = pair
    async with asyncio.timeout(DEADLINE):
        lost.arm("SET", meanwhile=lambda: admin.client.delete(admin.prefix + "gone"))
        assert await backend.compare_and_set("gone", None, b"first", 60) is False
        assert lost.struck
        assert lost.sent.get("SET") == 1
        assert await admin.get("gone") is None


async def command_calls(admin: Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT, leaving out the admin's own."""
    stats = await admin.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {name: n for name, n in counts.items() if name not in ("info", "config|resetstat")}


async def test_compare_and_set_is_one_command_on_the_server(
    fresh_server: RedisServer, admin: Redis
) -> None:
    backend = StorageCalls(RedisStorage(url=fresh_server.url), "redis")
    try:
        await backend.compare_and_set("warm-up", None, b"x", 60)  # loads the script too
        await backend.compare_and_set("warm-up", b"x", b"y", 60)
        await admin.config_resetstat()
        assert await backend.compare_and_set("k", None, b"a", 60) is True
        assert await command_calls(admin) == {"set": 1}
        await admin.config_resetstat()
        assert await backend.compare_and_set("k", b"a", b"b", None) is True
        assert await command_calls(admin) == {"evalsha": 1, "get": 1, "set": 1}  # script's
        assert await admin.ttl("sessionware:k") == -1
    finally:
        await backend.close()


async def test_the_script_is_loaded_again_after_script_flush_and_a_restart(
    fresh_server: RedisServer, admin: Redis
) -> None:
    backend = StorageCalls(RedisStorage(url=fresh_server.url), "redis")
    try:
        async with asyncio.timeout(DEADLINE):
            await backend.set("k", b"1", 60)
            assert await backend.compare_and_set("k", b"1", b"2", 60) is True
            await admin.script_flush()
            assert await backend.compare_and_set("k", b"2", b"3", 60) is True
            await asyncio.to_thread(fresh_server.restart)
            await backend.set("k", b"4", 60)  # resent once on a fresh connection
            assert await backend.compare_and_set("k", b"4", b"5", 60) is True
            assert await backend.get("k") == b"5"
    finally:
        await backend.close()


async def test_compare_and_set_on_a_connection_killed_while_idle_is_not_resent(
    fresh_server: RedisServer, admin: Redis
) -> None:
    """The server never ran it; the storage cannot know that, reads, and answers False."""
    backend = StorageCalls(RedisStorage(url=fresh_server.url), "redis")
    try:
        async with asyncio.timeout(DEADLINE):
            await backend.set("k", b"old", 60)
            await admin.client_kill_filter(_type="normal", skipme=True)
            await admin.config_resetstat()
            assert await backend.compare_and_set("k", b"old", b"new", 60) is False
            assert "evalsha" not in await command_calls(admin)
            assert await backend.get("k") == b"old"
            assert await backend.compare_and_set("k", b"old", b"new", 60) is True
    finally:
        await backend.close()


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from sessionware_redis import RedisStorage

    async def main(url, prefix, count):
        storage = RedisStorage(url=url, key_prefix=prefix)
        await storage.storage_get(key="counter")
        print("ready", flush=True)
        sys.stdin.readline()
        attempts = 0
        for _ in range(count):
            while True:
                attempts += 1
                current = await storage.storage_get(key="counter")
                value = str(int(current or b"0") + 1).encode()
                if await storage.storage_compare_and_set(
                    key="counter", expected=current, value=value, expires_in=60
                ):
                    break
        await storage.storage_close()
        print(attempts, flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_two_processes_racing_increments_lose_none(redis_server: RedisServer) -> None:
    count, prefix = 300, unique_prefix()
    argv = ["-c", WORKER, redis_server.url, prefix, str(count)]
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        async with asyncio.timeout(DEADLINE):
            for worker in workers:
                assert worker.stdout is not None
                assert await worker.stdout.readline() == b"ready\n"
            for worker in workers:  # both start together
                assert worker.stdin is not None
                worker.stdin.write(b"go\n")
                await worker.stdin.drain()
            outputs = [await worker.communicate() for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0]
        attempts = sum(int(out.strip()) for out, _ in outputs)
        assert attempts >= 2 * count
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    check = Redis.from_url(redis_server.url)
    try:
        assert await check.get(prefix + "counter") == str(2 * count).encode()
    finally:
        await check.aclose()
