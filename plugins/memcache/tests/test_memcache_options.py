"""Options and URLs: what is accepted, and the clear errors for what is not."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest
from sessionware_memcache import MemcacheConfig, MemcacheStorage


def config(**options: Any) -> MemcacheConfig:
    return MemcacheStorage(**options).config


def test_defaults() -> None:
    default = config()
    assert default.servers == (("127.0.0.1", 11211),)
    assert default.key_prefix == "sessionware:"
    assert default.connect_timeout == 1.0
    assert default.timeout == 1.0
    assert default.max_pool_size == 16
    assert default.dead_timeout == 1.0


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ("10.0.0.1:11211", (("10.0.0.1", 11211),)),
        ("cache", (("cache", 11211),)),
        (" a:1 , b:2 ,", (("a", 1), ("b", 2))),
        (["a:1", "b:2"], (("a", 1), ("b", 2))),
        (("a:1",), (("a", 1),)),
        ([("a", 1), "b:2"], (("a", 1), ("b", 2))),
        ("[::1]:11300", (("::1", 11300),)),
    ],
)
def test_servers_shapes(servers: object, expected: tuple[tuple[str, int], ...]) -> None:
    assert config(servers=servers).servers == expected


@pytest.mark.parametrize(
    ("servers", "match"),
    [
        ("", "empty"),
        ([], "empty"),
        ("host:port", "invalid port"),
        ("host:0", "invalid port"),
        ("host:70000", "invalid port"),
        (":11211", "no valid host"),
        ("a b:1", "no valid host"),
        ("::1:11211", "brackets"),
        ("a:1,a:1", "listed twice"),
    ],
)
def test_bad_servers_are_value_errors(servers: object, match: str) -> None:
    with pytest.raises(ValueError, match=rf"memcache storage: .*{match}"):
        MemcacheStorage(servers=servers)  # type: ignore[arg-type]


@pytest.mark.parametrize("servers", [11211, {"a": 1}, [11211], [("a", "1")], [("a", True)]])
def test_servers_of_the_wrong_type_are_type_errors(servers: object) -> None:
    with pytest.raises(TypeError, match=r"memcache storage: .*server"):
        MemcacheStorage(servers=servers)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["connect_timeout", "timeout"])
@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan")])
def test_timeouts_must_be_positive_and_finite(name: str, value: float) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=f"memcache storage: {name}"):
        MemcacheStorage(**options)


@pytest.mark.parametrize("name", ["connect_timeout", "timeout", "dead_timeout"])
@pytest.mark.parametrize("value", ["1", True])
def test_durations_must_be_numbers(name: str, value: object) -> None:
    options: dict[str, Any] = {name: value}
    with pytest.raises(TypeError, match=f"memcache storage: {name}"):
        MemcacheStorage(**options)


def test_dead_timeout_zero_is_allowed_but_not_negative() -> None:
    assert config(dead_timeout=0).dead_timeout == 0
    with pytest.raises(ValueError, match="dead_timeout"):
        MemcacheStorage(dead_timeout=-1)


def test_max_pool_size() -> None:
    assert config(max_pool_size=1).max_pool_size == 1
    with pytest.raises(ValueError, match="memcache storage: max_pool_size"):
        MemcacheStorage(max_pool_size=0)
    with pytest.raises(TypeError, match="memcache storage: max_pool_size"):
        MemcacheStorage(max_pool_size=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["has space", "tab\t", "é", "x" * 186])
def test_bad_key_prefix_is_a_value_error(prefix: str) -> None:
    with pytest.raises(ValueError, match="memcache storage: key_prefix"):
        MemcacheStorage(key_prefix=prefix)


def test_key_prefix_may_be_empty_or_long() -> None:
    assert config(key_prefix="").key_prefix == ""
    assert config(key_prefix="x" * 185).key_prefix == "x" * 185
    with pytest.raises(TypeError, match="key_prefix"):
        MemcacheStorage(key_prefix=b"app:")  # type: ignore[arg-type]


def test_url_with_several_servers() -> None:
    assert config(url="memcache://h1:11211,h2:11212").servers == (("h1", 11211), ("h2", 11212))
    assert config(url="memcached://h1/").servers == (("h1", 11211),)


def test_url_query_fills_the_other_options() -> None:
    parsed = config(
        url="memcache://h1:1?key_prefix=app:&timeout=0.5&connect_timeout=2"
        "&max_pool_size=4&dead_timeout=0"
    )
    assert (parsed.key_prefix, parsed.timeout, parsed.connect_timeout) == ("app:", 0.5, 2.0)
    assert (parsed.max_pool_size, parsed.dead_timeout) == (4, 0.0)


def test_url_without_servers_keeps_the_keyword_servers() -> None:
    assert config(url="memcache://", servers="h9:9").servers == (("h9", 9),)


@pytest.mark.parametrize(
    ("url", "options", "match"),
    [
        ("memcache://h1:1", {"servers": "h2:2"}, "servers is given both"),
        ("memcache://h1:1?timeout=1", {"timeout": 2}, "timeout is given both"),
        ("memcache://h1:1?key_prefix=a", {"key_prefix": "b"}, "key_prefix is given both"),
        ("redis://h1:1", {}, "memcache://"),
        ("memcache://user:pw@h1:1", {}, "no user or password"),
        ("memcache://h1:1/0", {}, "path"),
        ("memcache://h1:1?size=3", {}, "unknown URL option 'size'"),
        ("memcache://h1:1?timeout=soon", {}, "not a number"),
        ("memcache://h1:1?timeout=1&timeout=2", {}, "given twice"),
    ],
)
def test_bad_urls(url: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MemcacheStorage(url=url, **options)


def test_entry_points_name_the_storage_class() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="sessionware.storage")}
    assert found["memcache"] == "sessionware_memcache:MemcacheStorage"
    assert found["memcached"] == "sessionware_memcache:MemcacheStorage"


def test_construction_connects_to_nothing() -> None:
    """Nothing listens on port 1: building the storage must still succeed (lazy connect)."""
    MemcacheStorage(servers="127.0.0.1:1")
