"""What each deployment sends its commands through, built once per event loop.

One server and a Sentinel master: a list of redis-py connections the storage keeps itself.
A Cluster: the storage's own `RedisCluster`. A given client: that client, as it is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from redis.asyncio import Connection, Redis, RedisCluster, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ._call_limits import Admission
from ._client_commands import ClientCommands, ClusterCommands
from ._commands import Commands
from ._config import DEFAULT_SOCKET_TIMEOUT, RedisConfig
from ._connection_list import ConnectionList


def commands_builder(config: RedisConfig) -> Callable[[], Commands]:
    """How to build the commands of one event loop (no I/O: connections open on first use)."""
    if config.client is not None:
        return functools.partial(_given_client, config.client)
    if config.mode == "cluster":
        return functools.partial(_cluster, config)
    if config.mode == "sentinel":
        return functools.partial(_sentinel_master, config)
    return functools.partial(_server, config)


def _reconnect_once() -> Retry:
    """A connection that fails to open is tried once more at once; timeouts are not
    retried, so a call never waits much longer than socket_timeout."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def _cluster_retry() -> Retry:
    """The cluster client retries itself, re-reading the topology between attempts."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)


def _connection_options(config: RedisConfig) -> dict[str, Any]:
    return {
        "username": config.username,
        "password": config.password,
        "socket_connect_timeout": config.socket_connect_timeout,
    }


def _server(config: RedisConfig) -> ConnectionList:
    """The sockets get no timeout of their own: each command is bounded once, as a whole
    (redis-py would apply two per command, the write one through a task)."""
    make = functools.partial(
        SSLConnection if config.ssl else Connection,
        host=config.host,
        port=config.port,
        db=config.db,
        retry=_reconnect_once(),
        socket_timeout=None,
        **_connection_options(config),
    )
    return ConnectionList(make, config.max_connections, config.socket_timeout)


def _sentinel_master(config: RedisConfig) -> ConnectionList:
    """Connections to whichever server the sentinels name as master, asked when each opens."""
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
        retry=_reconnect_once(),
        socket_timeout=None,
        **_connection_options(config),
    )
    return ConnectionList(
        master.connection_pool.make_connection,
        config.max_connections,
        config.socket_timeout,
        also_close=(master, *sentinel.sentinels),
    )


def _cluster(config: RedisConfig) -> ClusterCommands:
    """A cluster client keeps its own socket timeouts, which its retries and topology
    refreshes rely on. It first discovers the topology with nothing else running: with
    commands arriving meanwhile, redis-py (8.1) sometimes closes a connection under one."""
    cluster = RedisCluster(
        host=config.host,
        port=config.port,
        ssl=config.ssl,
        max_connections=config.max_connections,
        retry=_cluster_retry(),
        socket_timeout=config.socket_timeout,
        **_connection_options(config),
    )
    admission = Admission(config.max_connections, config.socket_timeout, cluster.initialize)
    return ClusterCommands(cluster, admission, owned=True)


def _given_client(client: Redis | RedisCluster) -> Commands:
    """A given client's pool sets how many commands go at once, and its socket timeout how
    long a caller waits for one."""
    options = client.get_connection_kwargs()
    timeout = float(options.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT)
    if isinstance(client, RedisCluster):
        size = int(options.get("max_connections") or 2**31)
        return ClusterCommands(client, Admission(size, timeout, client.initialize), owned=False)
    size = int(client.connection_pool.max_connections or 2**31)
    return ClientCommands(client, Admission(size, timeout))
