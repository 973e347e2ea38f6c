"""Compare-and-set against real memcached: other processes, several servers, lost replies."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from sessionware import StorageError
from sessionware.testing import StorageCalls
from sessionware_memcache import MemcacheStorage

from tests.support.apps import storage_key as handle
from tests.support.processes import HOST, ServerProcess

Direct = Callable[[ServerProcess], Any]


# -- two processes ----------------------------------------------------------------------

PROCESSES, TASKS, INCREMENTS = 2, 4, 50

# Each process: TASKS tasks, each adding one INCREMENTS times by get + compare-and-set.
# It says "ready" once connected and starts on the line the test sends to every process.
_RACER = """
import asyncio, sys
from sessionware_memcache import MemcacheStorage

async def main(servers, prefix, key, tasks, increments):
    storage = MemcacheStorage(servers=servers, key_prefix=prefix)
    await storage.storage_get(key)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    lost = 0

    async def increments_of_one_task():
        nonlocal lost
        for _ in range(increments):
            while True:
                current = await storage.storage_get(key)
                value = str(int(current or b"0") + 1).encode()
                if await storage.storage_compare_and_set(key, current, value, 60):
                    break
                lost += 1

    await asyncio.gather(*(increments_of_one_task() for _ in range(tasks)))
    await storage.storage_close()
    print(lost, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


def test_two_processes_racing_increments_on_one_key_lose_none(
    memcached_server: ServerProcess, direct: Direct
) -> None:
    prefix, key = "racing:", handle("racing")
    argv = [sys.executable, "-c", _RACER, memcached_server.address, prefix, key]
    racers = [
        subprocess.Popen(
            [*argv, str(TASKS), str(INCREMENTS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None
            assert racer.stdout.readline().strip() == "ready"
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=60)[0] for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
    assert [racer.returncode for racer in racers] == [0] * PROCESSES
    total = PROCESSES * TASKS * INCREMENTS
    assert direct(memcached_server).get((prefix + key).encode()) == str(total).encode()
    # Proof that the increments raced: some compare-and-sets lost to another's write.
    assert sum(int(output) for output in outputs) > 0


# -- several servers ------------------------------------------------------------------------


async def test_compare_and_set_over_two_servers_uses_each_keys_own_server(
    memcached_pair: tuple[ServerProcess, ServerProcess], direct: Direct
) -> None:
    prefix = "spread-cas:"
    storage = MemcacheStorage(servers=[s.address for s in memcached_pair], key_prefix=prefix)
    backend = StorageCalls(storage, "memcache")
    keys = [handle(f"session-{i}") for i in range(40)] + ["~o." + handle("owner")]

    def holders(key: str) -> list[int]:
        wire = (prefix + key).encode()
        return [n for n, server in enumerate(memcached_pair) if direct(server).get(wire)]

    home: dict[str, int] = {}
    for key in keys:
        assert await backend.compare_and_set(key, None, b"created", 60) is True
        [home[key]] = holders(key)
    assert set(home.values()) == {0, 1}

    for key in keys:
        # A plain set puts the key on the same server, and gets + cas find it there.
        await backend.set(key, b"set", 60)
        assert holders(key) == [home[key]]
        assert await backend.compare_and_set(key, b"set", b"replaced", 60) is True
        assert await backend.compare_and_set(key, None, b"lost", 60) is False
        wire = (prefix + key).encode()
        assert direct(memcached_pair[home[key]]).get(wire) == b"replaced"
        assert direct(memcached_pair[1 - home[key]]).get(wire) is None
    await backend.close()


async def test_after_a_restart_no_pooled_connection_loses_an_add(
    memcached_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    """The connections from before the restart are closed; an add must not go out on one,
    where its reply would be lost and the caller told False for a key nobody holds."""
    server = memcached_pair[0]
    storage = MemcacheStorage(servers=server.address, max_pool_size=4)
    await asyncio.gather(*(storage.storage_set(f"warm-{i}", b"v", 60) for i in range(40)))
    server.restart()
    created = [await storage.storage_compare_and_set(f"new-{i}", None, b"v", 60) for i in range(8)]
    assert created == [True] * 8
    await storage.storage_close()


# -- values and errors ------------------------------------------------------------------------


@pytest_asyncio.fixture
async def backend(memcached_server: ServerProcess) -> AsyncIterator[StorageCalls]:
    calls = StorageCalls(
        MemcacheStorage(servers=memcached_server.address, key_prefix="cas:"), "memcache"
    )
    try:
        yield calls
    finally:
        await calls.close()


@pytest.mark.parametrize("expected", [None, b"small"])
async def test_a_value_over_the_item_limit_is_a_storage_error_and_changes_nothing(
    backend: StorageCalls, expected: bytes | None
) -> None:
    key = handle(f"huge-{expected!r}")
    if expected is not None:
        await backend.set(key, expected, 60)
    with pytest.raises(StorageError, match="too large") as info:
        await backend.compare_and_set(key, expected, b"x" * (2 * 1024 * 1024), 60)
    assert isinstance(info.value.__cause__, ValueError)
    assert await backend.get(key) == expected
    assert await backend.compare_and_set(key, expected, b"fits", 60) is True


async def test_the_expiry_is_sent_as_for_set(
    backend: StorageCalls, memcached_server: ServerProcess, direct: Direct
) -> None:
    """A TTL over 30 days must go out as a unix time, from add and cas alike."""
    key = handle("forty-days")
    assert await backend.compare_and_set(key, None, b"one", 40 * 24 * 3600) is True
    assert await backend.compare_and_set(key, b"one", b"two", 40 * 24 * 3600) is True
    reply = direct(memcached_server).raw_command(f"mg cas:{key} t".encode(), b"\r\n")
    remaining = int(reply.split(b" t", 1)[1])
    assert 40 * 24 * 3600 - 60 < remaining <= 40 * 24 * 3600 + 3
    assert await backend.get(key) == b"two"


# -- lost replies ---------------------------------------------------------------------------


class ReplyDropper:
    """A TCP proxy before a real memcached that breaks a connection around one command.

    memcached cannot be made to lose one chosen reply, so this injects the fault. Armed
    with a command (`add`, `cas`, `gets`) it breaks the connection that next sends it,
    "before" (the command never reaches memcached) or "after" (memcached runs it; its reply
    is dropped, `meanwhile` runs, then the connection closes). Everything else is relayed
    untouched; every command sent through it is counted.
    """

    def __init__(self, server: ServerProcess) -> None:
        self._server = (server.host, server.port)
        self._listener = socket.create_server((HOST, 0))
        self.address = f"{HOST}:{self._listener.getsockname()[1]}"
        self.sent: Counter[str] = Counter()
        self._armed: tuple[bytes, str, Callable[[], object]] | None = None
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(
        self, command: str, moment: str, meanwhile: Callable[[], object] = lambda: None
    ) -> None:
        assert moment in ("before", "after")
        self._armed = (command.encode(), moment, meanwhile)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._server)
            with self._lock:
                self._sockets += [client, upstream]
            dropping: list[Callable[[], object]] = []
            threading.Thread(
                target=self._up, args=(client, upstream, dropping), daemon=True
            ).start()
            threading.Thread(
                target=self._down, args=(upstream, client, dropping), daemon=True
            ).start()

    def _up(
        self, client: socket.socket, upstream: socket.socket, dropping: list[Callable[[], object]]
    ) -> None:
        while data := _recv(client):
            command = data.split(b" ", 1)[0]
            self.sent[command.decode(errors="replace")] += 1
            armed = self._armed
            if armed is not None and armed[0] == command:
                self._armed = None
                if armed[1] == "before":
                    _close(client)
                    _close(upstream)
                    return
                dropping.append(armed[2])
            upstream.sendall(data)

    def _down(
        self, upstream: socket.socket, client: socket.socket, dropping: list[Callable[[], object]]
    ) -> None:
        while data := _recv(upstream):
            if dropping:
                dropping[0]()
                break
            client.sendall(data)
        _close(client)
        _close(upstream)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 16)
    except OSError:
        return b""


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def dropper(memcached_server: ServerProcess) -> Iterator[ReplyDropper]:
    proxy = ReplyDropper(memcached_server)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest_asyncio.fixture
async def through(dropper: ReplyDropper) -> AsyncIterator[StorageCalls]:
    """The storage, talking to memcached through the dropper."""
    calls = StorageCalls(
        MemcacheStorage(servers=dropper.address, key_prefix="lost:", timeout=2), "memcache"
    )
    try:
        yield calls
    finally:
        await calls.close()


async def _prepare(through: StorageCalls, key: str, write: str) -> bytes | None:
    """For an `add`, nothing under `key`; for a `cas`, b"before" (the expected value)."""
    if write == "add":
        return None
    await through.set(key, b"before", 60)
    return b"before"


@pytest.mark.parametrize("write", ["add", "cas"])
async def test_a_write_whose_reply_is_lost_after_it_landed_is_true_and_not_resent(
    through: StorageCalls, dropper: ReplyDropper, write: str
) -> None:
    key = handle(f"landed-{write}")
    expected = await _prepare(through, key, write)
    dropper.arm(write, "after")
    assert await through.compare_and_set(key, expected, b"mine", 60) is True
    assert dropper.sent[write] == 1
    assert await through.get(key) == b"mine"


@pytest.mark.parametrize("write", ["add", "cas"])
async def test_a_write_lost_before_memcached_ran_it_is_false_and_not_resent(
    through: StorageCalls, dropper: ReplyDropper, write: str
) -> None:
    key = handle(f"never-ran-{write}")
    expected = await _prepare(through, key, write)
    dropper.arm(write, "before")
    assert await through.compare_and_set(key, expected, b"mine", 60) is False
    assert dropper.sent[write] == 1
    assert await through.get(key) == expected
    # The storage goes on working: the caller's retry succeeds.
    assert await through.compare_and_set(key, expected, b"mine", 60) is True
    assert await through.get(key) == b"mine"


@pytest.mark.parametrize("write", ["add", "cas"])
async def test_a_lost_reply_is_false_when_another_value_is_there_by_the_read_back(
    through: StorageCalls,
    dropper: ReplyDropper,
    memcached_server: ServerProcess,
    direct: Direct,
    write: str,
) -> None:
    """The write landed and another client replaced it before the read-back: the caller
    must be told False (and re-read), never True for a value that is no longer there."""
    key = handle(f"overwritten-{write}")
    expected = await _prepare(through, key, write)
    wire = f"lost:{key}".encode()
    dropper.arm(write, "after", lambda: direct(memcached_server).set(wire, b"theirs"))
    assert await through.compare_and_set(key, expected, b"mine", 60) is False
    assert dropper.sent[write] == 1
    assert await through.get(key) == b"theirs"


async def test_a_lost_gets_is_simply_read_again(
    through: StorageCalls, dropper: ReplyDropper
) -> None:
    key = handle("lost-gets")
    await through.set(key, b"before", 60)
    dropper.arm("gets", "after")
    assert await through.compare_and_set(key, b"before", b"after", 60) is True
    assert (dropper.sent["gets"], dropper.sent["cas"]) == (2, 1)
    assert await through.get(key) == b"after"
