"""Options of the memcache storage, with their defaults and checks, from keywords or a URL."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_PORT = 11211
DEFAULT_KEY_PREFIX = "sessionware:"
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_TIMEOUT = 1.0
DEFAULT_MAX_POOL_SIZE = 16
DEFAULT_DEAD_TIMEOUT = 1.0

#: memcached's limit on a key, in bytes, prefix included.
MAX_KEY_LENGTH = 250
#: A key that does not fit is stored as prefix + "#" + 64 hex digits of its SHA-256, so the
#: prefix must leave room for that.
MAX_KEY_PREFIX_LENGTH = MAX_KEY_LENGTH - 65

URL_SCHEMES = ("memcache", "memcached")
_URL_OPTIONS = ("key_prefix", "connect_timeout", "timeout", "max_pool_size", "dead_timeout")

Address = tuple[str, int]


def _fail(message: str) -> ValueError:
    return ValueError(f"memcache storage: {message}")


def _address(host: str, port_text: str, shown: str) -> Address:
    if not host or any(ch.isspace() or ch in "/@?#,[]" for ch in host):
        raise _fail(f"server {shown!r} has no valid host; expected 'host:port'")
    if not port_text:
        return host, DEFAULT_PORT
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise _fail(f"server {shown!r} has an invalid port; expected 'host:port'")
    return host, int(port_text)


def _parse_address(text: str) -> Address:
    """`host:port`, `host` (port 11211) or `[v6 address]:port`, spaces around ignored."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise _fail(f"server {text!r} is not '[address]:port'")
        return _address(host, rest[1:], text)
    host, _, port_text = text.partition(":")
    if ":" in port_text:
        raise _fail(f"server {text!r}: write an IPv6 address in brackets, '[::1]:11211'")
    return _address(host, port_text, text)


def _parse_item(item: object) -> Address:
    if isinstance(item, str):
        return _parse_address(item)
    if (
        isinstance(item, tuple | list)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], int)
        and not isinstance(item[1], bool)
    ):
        return _address(item[0], str(item[1]), f"{item[0]}:{item[1]}")
    raise TypeError(
        f"memcache storage: each server must be 'host:port' or a (host, port) pair, got {item!r}"
    )


def parse_servers(servers: object) -> tuple[Address, ...]:
    """Every accepted shape of the `servers` option, as (host, port) pairs in order."""
    items: list[object]
    if isinstance(servers, str):
        items = [part for part in servers.split(",") if part.strip()]
    elif isinstance(servers, list | tuple):
        items = list(servers)
    else:
        raise TypeError(
            f"memcache storage: servers must be 'host:port', a comma-separated string of "
            f"them or a list of them, got {type(servers).__name__}"
        )
    addresses: list[Address] = []
    for address in map(_parse_item, items):
        if address in addresses:
            raise _fail(f"server {address[0]}:{address[1]} is listed twice")
        addresses.append(address)
    if not addresses:
        raise _fail("servers is empty; give at least one 'host:port'")
    return tuple(addresses)


def _seconds(name: str, value: object, *, zero_allowed: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"memcache storage: {name} must be seconds as a number, got {type(value).__name__}"
        )
    low_ok = value >= 0 if zero_allowed else value > 0
    if not (low_ok and math.isfinite(value)):
        bound = "0 or more" if zero_allowed else "more than 0"
        raise _fail(f"{name} must be {bound} seconds, got {value}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemcacheConfig:
    """The checked options; `servers` is always a tuple of (host, port) pairs."""

    servers: tuple[Address, ...] = (("127.0.0.1", DEFAULT_PORT),)
    key_prefix: str = DEFAULT_KEY_PREFIX
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT
    max_pool_size: int = DEFAULT_MAX_POOL_SIZE
    dead_timeout: float = DEFAULT_DEAD_TIMEOUT

    def __post_init__(self) -> None:
        object.__setattr__(self, "servers", parse_servers(self.servers))
        prefix = self.key_prefix
        if not isinstance(prefix, str):
            raise TypeError(
                f"memcache storage: key_prefix must be a str, got {type(prefix).__name__}"
            )
        if not (prefix.isascii() and prefix.isprintable()) or " " in prefix:
            raise _fail(
                f"key_prefix must be printable ASCII without spaces (a memcached key), "
                f"got {prefix!r}"
            )
        if len(prefix) > MAX_KEY_PREFIX_LENGTH:
            raise _fail(
                f"key_prefix is {len(prefix)} characters; at most {MAX_KEY_PREFIX_LENGTH} "
                f"leave room for a key within memcached's {MAX_KEY_LENGTH}-byte limit"
            )
        object.__setattr__(
            self, "connect_timeout", _seconds("connect_timeout", self.connect_timeout)
        )
        object.__setattr__(self, "timeout", _seconds("timeout", self.timeout))
        object.__setattr__(
            self, "dead_timeout", _seconds("dead_timeout", self.dead_timeout, zero_allowed=True)
        )
        size = self.max_pool_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(
                f"memcache storage: max_pool_size must be an int, got {type(size).__name__}"
            )
        if size < 1:
            raise _fail(f"max_pool_size must be at least 1, got {size}")

    @classmethod
    def from_options(cls, *, url: str | None, **options: Any) -> MemcacheConfig:
        """Merge the URL's options with the keyword ones; naming one in both is an error."""
        given = {name: value for name, value in options.items() if value is not None}
        if url is not None:
            for name, value in _parse_url(url).items():
                if name in given:
                    raise _fail(f"{name} is given both in the URL and as an option; keep one")
                given[name] = value
        return cls(**given)


def _parse_url(url: str) -> dict[str, object]:
    """`memcache://h1:11211,h2:11211?key_prefix=app:&timeout=0.5` as options."""
    if not isinstance(url, str):
        raise TypeError(f"memcache storage: url must be a str, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise _fail(f"URL must start with 'memcache://', got {url!r}")
    if "@" in parts.netloc:
        raise _fail("memcached URLs carry no user or password")
    if parts.path not in ("", "/") or parts.fragment:
        raise _fail(f"URL has a path or fragment memcached has no use for: {url!r}")
    options: dict[str, object] = {}
    if parts.netloc:
        options["servers"] = parse_servers(parts.netloc)
    for name, text in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name not in _URL_OPTIONS:
            raise _fail(f"unknown URL option {name!r}; known: {', '.join(_URL_OPTIONS)}")
        if name in options:
            raise _fail(f"URL option {name!r} is given twice")
        options[name] = _url_value(name, text)
    return options


def _url_value(name: str, text: str) -> object:
    if name == "key_prefix":
        return text
    try:
        return int(text) if name == "max_pool_size" else float(text)
    except ValueError:
        raise _fail(f"URL option {name}={text!r} is not a number") from None
