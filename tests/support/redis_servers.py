"""Fixtures for real redis-server processes: one server, a three-master cluster, a sentinel."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from .processes import HOST, ServerProcess, free_port, require_binary

CLUSTER_MASTERS = 3
SENTINEL_MASTER_NAME = "sessionware-master"


class RedisServer(ServerProcess):
    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _redis_argv(binary: str, port: int, *extra: str) -> list[str]:
    return [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", *extra]


def start_redis(*extra: str) -> RedisServer:
    binary = require_binary("redis-server", "redis-server")
    port = free_port()
    server = RedisServer("redis", _redis_argv(binary, port, *extra), port)
    server.start()
    return server


def redis_cli(port: int, *args: str, timeout: float = 5.0) -> str:
    """One command through redis-cli, its reply as text: fixtures need no client library."""
    cli = require_binary("redis-cli", "redis-tools")
    done = subprocess.run(
        [cli, "-h", HOST, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout


def _wait_until(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} after {timeout}s")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole run; tests keep apart by key prefix."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


class RedisClusterServers:
    """Three cluster-enabled redis-servers joined into one cluster, no replicas."""

    def __init__(self, nodes: list[RedisServer]) -> None:
        self.nodes = nodes

    @property
    def host(self) -> str:
        return self.nodes[0].host

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def url(self) -> str:
        """The first master as a startup node."""
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_ready(nodes: list[RedisServer]) -> bool:
    return all("cluster_state:ok" in redis_cli(node.port, "CLUSTER", "INFO") for node in nodes)


def _require_redis_7(binary: str) -> None:
    """A cluster node here needs `--cluster-port` (Redis 7): port + 10000 may not be free."""
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"v=(\d+)\.", version.stdout)
    if found is None or int(found.group(1)) < 7:
        reason = f"a test cluster needs redis-server 7 or later, found {version.stdout.strip()!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def start_redis_cluster(masters: int = CLUSTER_MASTERS) -> RedisClusterServers:
    binary = require_binary("redis-server", "redis-server")
    cli = require_binary("redis-cli", "redis-tools")
    _require_redis_7(binary)
    nodes: list[RedisServer] = []
    cluster = RedisClusterServers(nodes)
    try:
        for _ in range(masters):
            port = free_port()
            argv = _redis_argv(
                binary,
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-port",
                str(free_port()),
                "--cluster-node-timeout",
                "5000",
            )
            node = RedisServer("redis-cluster", argv, port)
            nodes.append(node)
            node.start()
        create = [
            cli,
            "--cluster",
            "create",
            *(node.address for node in nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        done = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        _wait_until("the cluster is not ok", lambda: _cluster_ready(nodes))
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A real three-master Redis Cluster; `.url`/`.host`/`.port` name a startup node."""
    cluster = start_redis_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


class RedisSentinel:
    """One master watched by one sentinel (`redis-server --sentinel`)."""

    def __init__(self, master: RedisServer, sentinel: ServerProcess, master_name: str) -> None:
        self.master = master
        self.sentinel = sentinel
        self.master_name = master_name

    @property
    def host(self) -> str:
        return self.sentinel.host

    @property
    def port(self) -> int:
        return self.sentinel.port

    @property
    def address(self) -> str:
        """The sentinel as "host:port"."""
        return self.sentinel.address

    @property
    def sentinels(self) -> list[str]:
        """The `sentinels` option of the redis storage."""
        return [self.sentinel.address]

    def stop(self) -> None:
        self.sentinel.stop()
        self.master.stop()


def start_redis_sentinel(master_name: str = SENTINEL_MASTER_NAME) -> RedisSentinel:
    binary = require_binary("redis-server", "redis-server")
    master = start_redis()
    port = free_port()
    sentinel = ServerProcess("redis-sentinel", [], port)
    # A sentinel rewrites its configuration file, so it gets one of its own.
    config = sentinel.workdir / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind {HOST}\ndaemonize no\n"
        f"sentinel monitor {master_name} {master.host} {master.port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 5000\n"
    )
    sentinel.argv = [binary, str(config), "--sentinel"]
    try:
        sentinel.start()
        _wait_until(
            "the sentinel does not know its master",
            lambda: (
                str(master.port)
                in redis_cli(port, "SENTINEL", "get-master-addr-by-name", master_name)
            ),
        )
    except BaseException:
        sentinel.stop()
        master.stop()
        raise
    return RedisSentinel(master, sentinel, master_name)


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinel]:
    """A master and one sentinel; `.sentinels` and `.master_name` are the storage's options."""
    deployment = start_redis_sentinel()
    try:
        yield deployment
    finally:
        deployment.stop()
