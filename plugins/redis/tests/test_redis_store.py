"""The plugin as the core finds it: by name or URL, through a `Store`."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from sessionware import Config, StorageError, Store
from sessionware_redis import RedisStorage

from tests.support.redis_servers import RedisServer

from .support import unique_prefix


def test_both_schemes_name_the_redis_storage() -> None:
    found = {ep.name: ep.load() for ep in entry_points(group="sessionware.storage")}
    assert found["redis"] is RedisStorage
    assert found["rediss"] is RedisStorage


async def test_a_store_from_a_url_reads_through_the_plugin(redis_server: RedisServer) -> None:
    config = Config(storage=redis_server.url, storage_options={"key_prefix": unique_prefix()})
    async with Store(config) as store:
        assert await store.get_by_id("no-such-session") is None
        await store.reset()


def test_bad_options_reach_the_application_unchanged() -> None:
    with pytest.raises(ValueError, match="redis storage: port"):
        Store(Config(storage="redis", storage_options={"port": 0}))
    with pytest.raises(ValueError, match="host given both"):
        Store(Config(storage="redis://example.com/0", storage_options={"host": "other"}))


async def test_a_stopped_server_is_a_storage_error_then_works_again(
    fresh_server: RedisServer,
) -> None:
    async with Store(Config(storage=fresh_server.url)) as store:
        assert await store.get_by_id("before") is None
        fresh_server.stop()
        with pytest.raises(StorageError, match="redis") as caught:
            await store.get_by_id("during")
        assert caught.value.__cause__ is not None
        fresh_server.start()
        assert await store.get_by_id("after") is None
