"""Options and the URL form: what they set, and the clear errors at construction."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.asyncio import Redis, RedisCluster
from sessionware_redis import RedisConfig, RedisStorage
from sessionware_redis._storage import match_pattern, milliseconds


def config(**options: Any) -> RedisConfig:
    return RedisStorage(**options).config


def test_defaults() -> None:
    c = config()
    assert (c.mode, c.host, c.port, c.db, c.ssl) == ("server", "localhost", 6379, 0, False)
    assert c.key_prefix == "sessionware:"
    assert c.socket_timeout == 5.0
    assert c.socket_connect_timeout == 5.0
    assert c.max_connections == 50


def test_url_fills_host_port_db_credentials() -> None:
    c = config(url="redis://user:p%40ss@example.com:6380/2")
    assert (c.host, c.port, c.db, c.username, c.password, c.ssl) == (
        "example.com",
        6380,
        2,
        "user",
        "p@ss",
        False,
    )


def test_rediss_url_means_tls_and_a_password_alone_is_fine() -> None:
    c = config(url="rediss://:secret@cache.internal")
    assert (c.host, c.port, c.db, c.username, c.password, c.ssl) == (
        "cache.internal",
        6379,
        0,
        None,
        "secret",
        True,
    )


def test_ipv6_url() -> None:
    assert config(url="redis://[::1]:6390/0").host == "::1"


def test_keywords_fill_what_the_url_leaves_out() -> None:
    c = config(url="redis://example.com", db=3, username="u", password="p")
    assert (c.db, c.username, c.password) == (3, "u", "p")


def test_the_password_stays_out_of_repr() -> None:
    storage = RedisStorage(url="redis://:hunter2@example.com/0")
    assert "hunter2" not in repr(storage.config)
    assert "hunter2" not in repr(storage)


def test_host_and_port_keywords() -> None:
    c = config(host="10.0.0.5", port=7000, db=4, ssl=True, key_prefix="app:")
    assert (c.host, c.port, c.db, c.ssl, c.key_prefix) == ("10.0.0.5", 7000, 4, True, "app:")


def test_cluster_and_sentinel_modes() -> None:
    assert config(url="redis://node1:7000", cluster=True).mode == "cluster"
    c = config(sentinels=["s1:26379", ("s2", 26380), "[::1]:26381"], master_name="main")
    assert c.mode == "sentinel"
    assert c.sentinels == (("s1", 26379), ("s2", 26380), ("::1", 26381))
    assert c.master_name == "main"


def test_a_given_client_is_used_as_is() -> None:
    client = Redis()
    storage = RedisStorage(client=client, key_prefix="x:")
    assert storage.client is client
    assert storage.config.mode == "client"


def test_a_given_cluster_client_is_accepted() -> None:
    client = RedisCluster(host="127.0.0.1", port=7000)
    assert RedisStorage(client=client).client is client


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"hots": "localhost"}, TypeError, "hots"),
        ({"url": 6379}, TypeError, "url"),
        ({"url": "http://example.com"}, ValueError, r"redis://"),
        ({"url": "redis://example.com:99999/0"}, ValueError, "port"),
        ({"url": "redis://example.com/zero"}, ValueError, "database number"),
        ({"url": "redis://example.com/0?ssl=true"}, ValueError, "query"),
        ({"url": "redis://example.com/0", "host": "other"}, ValueError, "host"),
        ({"url": "redis://example.com/0", "port": 6380}, ValueError, "port"),
        ({"url": "redis://example.com/1", "db": 2}, ValueError, "db"),
        ({"url": "redis://u:p@example.com/0", "password": "q"}, ValueError, "password"),
        ({"url": "rediss://example.com/0", "ssl": True}, ValueError, "ssl"),
        ({"host": 127}, TypeError, "host"),
        ({"host": ""}, ValueError, "host"),
        ({"port": "6379"}, TypeError, "port"),
        ({"port": True}, TypeError, "port"),
        ({"port": 0}, ValueError, "port"),
        ({"port": 65536}, ValueError, "port"),
        ({"db": -1}, ValueError, "db"),
        ({"db": 1.0}, TypeError, "db"),
        ({"username": 1}, TypeError, "username"),
        ({"password": b"secret"}, TypeError, "password"),
        ({"ssl": "yes"}, TypeError, "ssl"),
        ({"cluster": 1}, TypeError, "cluster"),
        ({"cluster": True, "db": 1}, ValueError, "database 0"),
        ({"cluster": True, "sentinels": ["s:26379"], "master_name": "m"}, ValueError, "cluster"),
        ({"sentinels": ["s:26379"]}, ValueError, "master_name"),
        ({"master_name": "m"}, ValueError, "sentinels"),
        ({"sentinels": "s:26379", "master_name": "m"}, TypeError, "sentinels"),
        ({"sentinels": [], "master_name": "m"}, ValueError, "sentinel"),
        ({"sentinels": ["s"], "master_name": "m"}, ValueError, "host:port"),
        ({"sentinels": ["s:port"], "master_name": "m"}, ValueError, "host:port"),
        ({"sentinels": [("s", "26379")], "master_name": "m"}, TypeError, "port"),
        ({"sentinels": [("s", 26379, 1)], "master_name": "m"}, TypeError, "sentinel"),
        ({"sentinels": ["s:26379"], "master_name": ""}, ValueError, "master_name"),
        ({"sentinels": ["s:26379"], "master_name": "m", "host": "h"}, ValueError, "host"),
        ({"sentinels": ["s:26379"], "master_name": "m", "url": "redis://h"}, ValueError, "url"),
        ({"key_prefix": ""}, ValueError, "key_prefix"),
        ({"key_prefix": b"x:"}, TypeError, "key_prefix"),
        ({"socket_timeout": 0}, ValueError, "socket_timeout"),
        ({"socket_timeout": float("inf")}, ValueError, "socket_timeout"),
        ({"socket_timeout": "5"}, TypeError, "socket_timeout"),
        ({"socket_connect_timeout": -1}, ValueError, "socket_connect_timeout"),
        ({"max_connections": 0}, ValueError, "max_connections"),
        ({"max_connections": 2.5}, TypeError, "max_connections"),
        ({"client": "redis://example.com"}, TypeError, "client"),
    ],
)
def test_bad_options_fail_at_construction(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as caught:
        RedisStorage(**options)
    if "hots" not in options:
        assert "redis storage" in str(caught.value)


@pytest.mark.parametrize(
    "extra",
    [
        {"url": "redis://example.com/0"},
        {"host": "example.com"},
        {"max_connections": 5},
        {"socket_timeout": 1.0},
        {"cluster": True},
        {"sentinels": ["s:26379"], "master_name": "m"},
    ],
)
def test_a_client_takes_no_connection_options(extra: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="client"):
        RedisStorage(client=Redis(), **extra)


def test_a_synchronous_client_is_refused() -> None:
    with pytest.raises(TypeError, match=r"redis\.asyncio"):
        RedisStorage(client=redis.Redis())  # type: ignore[arg-type]


def test_a_decoding_client_is_refused() -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStorage(client=Redis(decode_responses=True))


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        RedisStorage("redis://example.com")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [
        (0.3, 300),
        (4.03, 4030),
        (1.0001, 1001),
        (0.0001, 1),
        (1e-9, 1),
        (0, 1),
        (86400, 86_400_000),
        (40 * 24 * 3600, 3_456_000_000),
    ],
)
def test_ttl_milliseconds_round_up_and_are_never_zero(seconds: float, ms: int) -> None:
    assert milliseconds(seconds) == ms


def test_the_scan_pattern_takes_the_prefix_literally() -> None:
    assert match_pattern("sessionware:") == "sessionware:*"
    assert match_pattern("a*b?[c]\\:") == "a\\*b\\?\\[c\\]\\\\:*"
