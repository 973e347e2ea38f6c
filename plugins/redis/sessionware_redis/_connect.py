"""Building the redis-py client for each deployment: one server, Sentinel, or Cluster."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Connection, ConnectionPool, Redis, RedisCluster, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ._config import DEFAULT_SOCKET_TIMEOUT, Client, RedisConfig
from ._direct import DirectCommands
from ._gate import Gate


def _reconnect_once() -> Retry:
    """One immediate retry on a broken connection.

    A connection the server killed, or lost in a restart, is replaced and the command sent
    again (GET, SET and UNLINK are safe to repeat). Timeouts are not retried, so a call never
    waits much longer than socket_timeout.
    """
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def _cluster_retry() -> Retry:
    """The cluster client retries itself, re-reading the topology between attempts."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)


def _connection_options(config: RedisConfig, *, socket_timeout: float | None) -> dict[str, Any]:
    return {
        "username": config.username,
        "password": config.password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": config.socket_connect_timeout,
    }


def bounds_each_call(config: RedisConfig) -> bool:
    """Whether the storage bounds every call by `socket_timeout` itself.

    redis-py applies a socket_timeout twice per command, and the write half through
    `asyncio.wait_for`, which starts a task: together about a tenth of a command's CPU.
    For the clients it builds for one server or Sentinel, the plugin leaves the sockets
    without a timeout and bounds the whole call once instead; a call cut short closes its
    connection (redis-py drops a connection whose reply was not read). The cluster client
    keeps its own timeouts, which its retries and topology refreshes rely on.
    """
    return config.client is None and config.mode != "cluster"


def connect(config: RedisConfig) -> tuple[Client, tuple[Any, ...]]:
    """The client to send commands to, and what `close` must close (all opened here)."""
    if config.client is not None:
        return config.client, ()
    if config.mode == "cluster":
        cluster = RedisCluster(
            host=config.host,
            port=config.port,
            ssl=config.ssl,
            max_connections=config.max_connections,
            retry=_cluster_retry(),
            **_connection_options(config, socket_timeout=config.socket_timeout),
        )
        return cluster, (cluster,)
    if config.mode == "sentinel":
        return _sentinel_master(config)
    pool = ConnectionPool(
        connection_class=SSLConnection if config.ssl else Connection,
        host=config.host,
        port=config.port,
        db=config.db,
        max_connections=config.max_connections,
        retry=_reconnect_once(),
        **_connection_options(config, socket_timeout=None),
    )
    client = Redis.from_pool(pool)
    return client, (client,)


def commands_of(config: RedisConfig, client: Client) -> tuple[Callable[..., Awaitable[Any]], Any]:
    """How get, set and delete send a command, and what must be closed for it (or None).

    For one server of our own the commands skip redis-py's client and pool layers (see
    `DirectCommands`); everything else goes through the client.
    """
    if config.mode == "server" and isinstance(client, Redis):
        direct = DirectCommands(client.connection_pool)
        return direct, direct
    return client.execute_command, None


def _sentinel_master(config: RedisConfig) -> tuple[Client, tuple[Any, ...]]:
    """A client of whichever server the sentinels name as master, followed across failovers."""
    assert config.master_name is not None
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(config.sentinels),
        sentinel_kwargs={
            "socket_timeout": config.socket_timeout,
            "socket_connect_timeout": config.socket_connect_timeout,
            "retry": _reconnect_once(),
        },
    )
    master = sentinel.master_for(
        config.master_name,
        db=config.db,
        ssl=config.ssl,
        max_connections=config.max_connections,
        retry=_reconnect_once(),
        **_connection_options(config, socket_timeout=None),
    )
    return master, (master, *sentinel.sentinels)


def gate(config: RedisConfig, client: Client) -> Gate:
    """Our own client waits by our options; a client given to us by its own pool's limits.

    A cluster client first discovers the topology with nothing else running: with commands
    arriving meanwhile, redis-py (8.1) sometimes closes a connection under one of them.
    """
    prepare = client.initialize if isinstance(client, RedisCluster) else None
    if config.client is None:
        return Gate(config.max_connections, config.socket_timeout, prepare)
    options = client.get_connection_kwargs()
    if isinstance(client, RedisCluster):
        size = options.get("max_connections")
    else:
        size = client.connection_pool.max_connections
    timeout = options.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT
    return Gate(int(size or 2**31), float(timeout), prepare)
