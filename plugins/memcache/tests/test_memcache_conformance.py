from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sessionware.testing import StorageConformance
from sessionware_memcache import MemcacheStorage

from tests.support.memcached_servers import start_memcached, stop_all
from tests.support.processes import ServerProcess


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two memcached of this module's own: the suite's resets flush them."""
    first = start_memcached()
    second = start_memcached()
    try:
        yield first, second
    finally:
        stop_all(first, second)


@pytest.fixture
def prefix() -> str:
    """One key prefix per test, shared by `storage` and `other_client`."""
    return f"t{uuid.uuid4().hex[:12]}:"


class TestMemcacheConformance(StorageConformance):
    ttl_resolution = 1.0

    @pytest.fixture
    def storage(self, servers: tuple[ServerProcess, ServerProcess], prefix: str) -> MemcacheStorage:
        return MemcacheStorage(servers=servers[0].address, key_prefix=prefix)

    @pytest.fixture
    def other_storage(
        self, servers: tuple[ServerProcess, ServerProcess], prefix: str
    ) -> MemcacheStorage:
        """On the other server: a reset flushes only the servers it is configured with."""
        return MemcacheStorage(servers=servers[1].address, key_prefix=f"other-{prefix}")

    @pytest.fixture
    def other_client(
        self, servers: tuple[ServerProcess, ServerProcess], prefix: str
    ) -> MemcacheStorage:
        return MemcacheStorage(servers=servers[0].address, key_prefix=prefix)


class TestMemcacheConformanceOverTwoServers(StorageConformance):
    """The same contract when keys are spread over two servers by hashing."""

    ttl_resolution = 1.0

    @pytest.fixture
    def storage(self, servers: tuple[ServerProcess, ServerProcess], prefix: str) -> MemcacheStorage:
        return MemcacheStorage(servers=[server.address for server in servers], key_prefix=prefix)

    @pytest.fixture
    def other_client(
        self, servers: tuple[ServerProcess, ServerProcess], prefix: str
    ) -> MemcacheStorage:
        return MemcacheStorage(servers=[server.address for server in servers], key_prefix=prefix)
