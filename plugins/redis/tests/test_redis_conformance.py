"""The shared storage contract, run against a real server, a real Cluster and a Sentinel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from sessionware.testing import StorageConformance
from sessionware_redis import RedisStorage

from tests.support.redis_servers import RedisClusterServers, RedisSentinel, RedisServer

from .support import unique_prefix


class TestRedisConformance(StorageConformance):
    @pytest.fixture
    def storage(self, redis_server: RedisServer) -> RedisStorage:
        return RedisStorage(url=redis_server.url, key_prefix=unique_prefix())

    @pytest.fixture
    def other_storage(self, redis_server: RedisServer) -> RedisStorage:
        return RedisStorage(url=redis_server.url, key_prefix=unique_prefix())


class TestRedisHostPortConformance(StorageConformance):
    @pytest.fixture
    def storage(self, redis_server: RedisServer) -> RedisStorage:
        return RedisStorage(
            host=redis_server.host, port=redis_server.port, db=1, key_prefix=unique_prefix()
        )

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

    @pytest.fixture
    def storage(self, client: Redis) -> RedisStorage:
        return RedisStorage(client=client, key_prefix=unique_prefix())

    @pytest.fixture
    def other_storage(self, client: Redis) -> RedisStorage:
        return RedisStorage(client=client, key_prefix=unique_prefix())


class TestRedisClusterConformance(StorageConformance):
    @pytest.fixture
    def storage(self, redis_cluster: RedisClusterServers) -> RedisStorage:
        return RedisStorage(url=redis_cluster.url, cluster=True, key_prefix=unique_prefix())

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
    def storage(self, redis_sentinel: RedisSentinel) -> RedisStorage:
        return RedisStorage(
            sentinels=redis_sentinel.sentinels,
            master_name=redis_sentinel.master_name,
            key_prefix=unique_prefix(),
        )

    @pytest.fixture
    def other_storage(self, redis_sentinel: RedisSentinel) -> RedisStorage:
        return RedisStorage(
            sentinels=[(redis_sentinel.host, redis_sentinel.port)],
            master_name=redis_sentinel.master_name,
            key_prefix=unique_prefix(),
        )
