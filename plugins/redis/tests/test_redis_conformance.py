"""The shared storage contract, run against a real server, a real Cluster and a Sentinel.

`other_client` is a second storage on the same keys with connections of its own, as a
second worker process would have: compare-and-set must be atomic between the two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis, RedisCluster
from sessionware.testing import StorageConformance
from sessionware_redis import RedisStorage

from tests.support.redis_servers import RedisClusterServers, RedisSentinel, RedisServer

from .support import unique_prefix


@pytest.fixture
def prefix() -> str:
    """The key prefix of `storage` and `other_client`: they share their keys."""
    return unique_prefix()


class TestRedisConformance(StorageConformance):
    @pytest.fixture
    def storage(self, redis_server: RedisServer, prefix: str) -> RedisStorage:
        return RedisStorage(url=redis_server.url, key_prefix=prefix)

    @pytest.fixture
    def other_client(self, redis_server: RedisServer, prefix: str) -> RedisStorage:
        return RedisStorage(url=redis_server.url, key_prefix=prefix)

    @pytest.fixture
    def other_storage(self, redis_server: RedisServer) -> RedisStorage:
        return RedisStorage(url=redis_server.url, key_prefix=unique_prefix())


class TestRedisHostPortConformance(StorageConformance):
    @pytest.fixture
    def storage(self, redis_server: RedisServer, prefix: str) -> RedisStorage:
        return RedisStorage(host=redis_server.host, port=redis_server.port, db=1, key_prefix=prefix)

    @pytest.fixture
    def other_client(self, redis_server: RedisServer, prefix: str) -> RedisStorage:
        return RedisStorage(host=redis_server.host, port=redis_server.port, db=1, key_prefix=prefix)

    @pytest.fixture
    def other_storage(self, redis_server: RedisServer) -> RedisStorage:
        return RedisStorage(
            host=redis_server.host, port=redis_server.port, db=1, key_prefix=unique_prefix()
        )


class TestRedisGivenClientConformance(StorageConformance):
    @pytest_asyncio.fixture
    async def client(self, redis_server: RedisServer) -> AsyncIterator[Redis]:
        client = Redis.from_url(redis_server.url)
        try:
            yield client
        finally:
            await client.aclose()

    @pytest_asyncio.fixture
    async def second_client(self, redis_server: RedisServer) -> AsyncIterator[Redis]:
        client = Redis.from_url(redis_server.url)
        try:
            yield client
        finally:
            await client.aclose()

    @pytest.fixture
    def storage(self, client: Redis, prefix: str) -> RedisStorage:
        return RedisStorage(client=client, key_prefix=prefix)

    @pytest.fixture
    def other_client(self, second_client: Redis, prefix: str) -> RedisStorage:
        return RedisStorage(client=second_client, key_prefix=prefix)

    @pytest.fixture
    def other_storage(self, client: Redis) -> RedisStorage:
        return RedisStorage(client=client, key_prefix=unique_prefix())


class TestRedisGivenClusterClientConformance(StorageConformance):
    @pytest_asyncio.fixture
    async def client(self, redis_cluster: RedisClusterServers) -> AsyncIterator[RedisCluster]:
        client = RedisCluster(host=redis_cluster.host, port=redis_cluster.port)
        try:
            yield client
        finally:
            await client.aclose()

    @pytest.fixture
    def storage(self, client: RedisCluster, prefix: str) -> RedisStorage:
        return RedisStorage(client=client, key_prefix=prefix)

    @pytest.fixture
    def other_client(self, redis_cluster: RedisClusterServers, prefix: str) -> RedisStorage:
        return RedisStorage(url=redis_cluster.url, cluster=True, key_prefix=prefix)

    @pytest.fixture
    def other_storage(self, client: RedisCluster) -> RedisStorage:
        return RedisStorage(client=client, key_prefix=unique_prefix())


class TestRedisClusterConformance(StorageConformance):
    @pytest.fixture
    def storage(self, redis_cluster: RedisClusterServers, prefix: str) -> RedisStorage:
        return RedisStorage(url=redis_cluster.url, cluster=True, key_prefix=prefix)

    @pytest.fixture
    def other_client(self, redis_cluster: RedisClusterServers, prefix: str) -> RedisStorage:
        node = redis_cluster.nodes[-1]  # another startup node
        return RedisStorage(host=node.host, port=node.port, cluster=True, key_prefix=prefix)

    @pytest.fixture
    def other_storage(self, redis_cluster: RedisClusterServers) -> RedisStorage:
        return RedisStorage(
            host=redis_cluster.host,
            port=redis_cluster.port,
            cluster=True,
            key_prefix=unique_prefix(),
        )


class TestRedisSentinelConformance(StorageConformance):
    @pytest.fixture
    def storage(self, redis_sentinel: RedisSentinel, prefix: str) -> RedisStorage:
        return RedisStorage(
            sentinels=redis_sentinel.sentinels,
            master_name=redis_sentinel.master_name,
            key_prefix=prefix,
        )

    @pytest.fixture
    def other_client(self, redis_sentinel: RedisSentinel, prefix: str) -> RedisStorage:
        return RedisStorage(
            sentinels=[(redis_sentinel.host, redis_sentinel.port)],
            master_name=redis_sentinel.master_name,
            key_prefix=prefix,
        )

    @pytest.fixture
    def other_storage(self, redis_sentinel: RedisSentinel) -> RedisStorage:
        return RedisStorage(
            sentinels=[(redis_sentinel.host, redis_sentinel.port)],
            master_name=redis_sentinel.master_name,
            key_prefix=unique_prefix(),
        )
