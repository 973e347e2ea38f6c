"""Options of the redis storage: defaults, the URL form, and checks that fail at construction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis, RedisCluster

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 6379
DEFAULT_KEY_PREFIX = "sessionware:"
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_SOCKET_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 50

Mode = Literal["server", "cluster", "sentinel", "client"]
Client = Redis | RedisCluster
Address = tuple[str, int]

_CONNECTION_OPTIONS = (
    "url",
    "host",
    "port",
    "db",
    "username",
    "password",
    "ssl",
    "cluster",
    "sentinels",
    "master_name",
    "socket_timeout",
    "socket_connect_timeout",
    "max_connections",
)


def _fail(message: str) -> ValueError:
    return ValueError(f"redis storage: {message}")


def _type_error(option: str, expected: str, value: object) -> TypeError:
    return TypeError(f"redis storage: {option} must be {expected}, got {type(value).__name__}")


def _text(option: str, value: object) -> str:
    if not isinstance(value, str):
        raise _type_error(option, "a str", value)
    return value


def _integer(option: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(option, "an int", value)
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f"at least {low}"
        raise _fail(f"{option} must be {bounds}, got {value}")
    return value


def _seconds(option: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(option, "seconds as a number", value)
    if not 0 < value < float("inf"):
        raise _fail(f"{option} must be more than 0 seconds, got {value}")
    return float(value)


def _port(option: str, value: object) -> int:
    return _integer(option, value, 1, 65535)


def _address(text: str) -> Address:
    """'host:port' or '[v6-host]:port' as a pair."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit():
        raise _fail(f"a sentinel must be 'host:port', got {text!r}")
    return host, _port("a sentinel's port", int(port))


def _sentinels(value: object) -> tuple[Address, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _type_error("sentinels", "a list of 'host:port' strings or (host, port) pairs", value)
    if not value:
        raise _fail("sentinels must name at least one sentinel")
    addresses = []
    for item in value:
        if isinstance(item, str):
            addresses.append(_address(item))
        elif isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) == 2:
            host = _text("a sentinel's host", item[0])
            if not host:
                raise _fail("a sentinel's host must not be empty")
            addresses.append((host, _port("a sentinel's port", item[1])))
        else:
            raise _type_error("each sentinel", "'host:port' or a (host, port) pair", item)
    return tuple(addresses)


@dataclass(frozen=True, slots=True)
class _UrlParts:
    host: str
    port: int
    db: int | None
    username: str | None
    password: str | None
    ssl: bool


def parse_url(url: object) -> _UrlParts:
    """`redis://[user:pass@]host:port/db`, or `rediss://` for TLS."""
    text = _text("url", url)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise _fail(f"url must start with redis:// or rediss://, got {text!r}")
    if parts.query or parts.fragment:
        raise _fail(f"url takes no query or fragment, pass options as keywords: {text!r}")
    try:
        port = parts.port
    except ValueError:
        raise _fail(f"url has an invalid port: {text!r}") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise _fail(f"url path must be a database number, got {parts.path!r}")
    return _UrlParts(
        host=parts.hostname or DEFAULT_HOST,
        port=DEFAULT_PORT if port is None else _port("url port", port),
        db=int(path) if path else None,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        ssl=scheme == "rediss",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisConfig:
    """Checked options: how to reach Redis, and how this storage names its keys."""

    mode: Mode = "server"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    client: Client | None = None
    sentinels: tuple[Address, ...] = ()
    master_name: str | None = None
    key_prefix: str = DEFAULT_KEY_PREFIX
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    socket_connect_timeout: float = DEFAULT_SOCKET_CONNECT_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    @classmethod
    def from_options(cls, **options: Any) -> RedisConfig:
        """Check every option given (None means not given) and combine them into one config."""
        given = {name: value for name, value in options.items() if value is not None}
        prefix = _text("key_prefix", given.pop("key_prefix", DEFAULT_KEY_PREFIX))
        if not prefix:
            raise _fail("key_prefix must not be empty: reset would remove every key")
        if "client" in given:
            return cls._for_client(given, prefix)
        settings: dict[str, Any] = {"key_prefix": prefix}
        if "url" in given:
            settings |= cls._from_url(given)
        if "host" in given:
            host = _text("host", given["host"])
            if not host:
                raise _fail("host must not be empty")
            settings["host"] = host
        if "port" in given:
            settings["port"] = _port("port", given["port"])
        if "db" in given:
            settings["db"] = _integer("db", given["db"], 0)
        for name in ("username", "password"):
            if name in given:
                settings[name] = _text(name, given[name])
        if "ssl" in given:
            if not isinstance(given["ssl"], bool):
                raise _type_error("ssl", "a bool", given["ssl"])
            settings["ssl"] = given["ssl"]
        for name in ("socket_timeout", "socket_connect_timeout"):
            if name in given:
                settings[name] = _seconds(name, given[name])
        if "max_connections" in given:
            settings["max_connections"] = _integer("max_connections", given["max_connections"], 1)
        settings["mode"] = cls._mode(given, settings)
        return cls(**settings)

    @staticmethod
    def _from_url(given: dict[str, Any]) -> dict[str, Any]:
        """The URL's options; the same option also given as a keyword is an error."""
        parts = parse_url(given["url"])
        in_url = {"host": parts.host, "port": parts.port, "ssl": parts.ssl}
        for name in ("db", "username", "password"):
            if getattr(parts, name) is not None:
                in_url[name] = getattr(parts, name)
        both = sorted(name for name in in_url if name in given)
        if both:
            raise _fail(
                f"{', '.join(both)} given both in url and as an option; "
                "the url names the host, port and scheme (rediss:// for TLS), so give one"
            )
        return in_url

    @staticmethod
    def _mode(given: dict[str, Any], settings: dict[str, Any]) -> Mode:
        cluster = given.get("cluster", False)
        if not isinstance(cluster, bool):
            raise _type_error("cluster", "a bool", cluster)
        if "sentinels" in given:
            if cluster:
                raise _fail("cluster and sentinels exclude each other: pick one deployment")
            for name in ("url", "host", "port"):
                if name in given:
                    raise _fail(f"{name} does not go with sentinels: the sentinels name the master")
            if "master_name" not in given:
                raise _fail("sentinels need master_name, the name the sentinels monitor")
            settings["sentinels"] = _sentinels(given["sentinels"])
            settings["master_name"] = _text("master_name", given["master_name"])
            if not settings["master_name"]:
                raise _fail("master_name must not be empty")
            return "sentinel"
        if "master_name" in given:
            raise _fail("master_name only goes with sentinels")
        if cluster:
            if settings.get("db", 0) != 0:
                raise _fail("a Redis Cluster has only database 0")
            return "cluster"
        return "server"

    @classmethod
    def _for_client(cls, given: dict[str, Any], prefix: str) -> RedisConfig:
        client = given.pop("client")
        if not isinstance(client, Redis | RedisCluster):
            raise _type_error(
                "client", "a redis.asyncio.Redis or redis.asyncio.RedisCluster", client
            )
        extra = [name for name in _CONNECTION_OPTIONS if name in given and given[name] is not False]
        if extra:
            raise _fail(
                f"client is already connected; {', '.join(extra)} cannot be given with it "
                "(configure the client itself)"
            )
        if client.get_encoder().decode_responses:
            raise _fail("client must be created with decode_responses=False: sessions are bytes")
        return cls(mode="client", client=client, key_prefix=prefix)
