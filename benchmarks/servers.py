"""The servers the benchmark starts for itself, and the sessionware storage options for each.

redis-server, memcached and PostgreSQL run on free loopback ports through the test suite's
own helpers (tests/support), never on a server that happens to be running on this machine.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BACKENDS = ("memory", "redis", "sqlite", "memcache", "postgres")


@dataclass
class Servers:
    """What this run started; `stop()` ends exactly those processes."""

    redis: Any = None
    memcached: Any = None
    postgres: Any = None
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sessionware-bench-")))
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        for server in (self.redis, self.memcached, self.postgres):
            if server is not None:
                server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _start(what: str, start: Any, notes: list[str]) -> Any:
    """A server from a tests/support helper, or None and a note saying why not."""
    import pytest

    try:
        return start()
    except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:
        notes.append(f"{what} could not be started ({exc}); what needs it is skipped")
        return None


def start_servers(backends: set[str]) -> Servers:
    servers = Servers()
    if "redis" in backends:
        from tests.support.redis_servers import start_redis

        servers.redis = _start("redis-server", start_redis, servers.notes)
    if "memcache" in backends:
        from tests.support.memcached_servers import start_memcached

        servers.memcached = _start("memcached", start_memcached, servers.notes)
    if "postgres" in backends:
        from tests.support.postgres_servers import start_postgres

        servers.postgres = _start("postgres", start_postgres, servers.notes)
    return servers


def storage_factory(backend: str) -> Any:
    """The installed plugin's factory (its entry point), or raise saying why it is missing."""
    found = importlib.metadata.entry_points(group="sessionware.storage", name=backend)
    if not found:
        raise LookupError(f"no {backend!r} storage plugin is installed")
    return next(iter(found)).load()


def storage_options(backend: str, servers: Servers, label: str) -> dict[str, Any] | None:
    """The `storage_options` of one sessionware app, or None when its server is missing."""
    if backend == "memory":
        return {}
    if backend == "redis":
        if servers.redis is None:
            return None
        return {"url": servers.redis.url, "key_prefix": f"bench-{label}:"}
    if backend == "sqlite":
        return {"database": str(servers.tmp / f"{label}.sqlite3")}
    if backend == "memcache":
        if servers.memcached is None:
            return None
        return {"servers": servers.memcached.address, "key_prefix": f"bench-{label}:"}
    if backend == "postgres":
        if servers.postgres is None:
            return None
        return {"url": servers.postgres.url, "table": "bench_" + label.replace("-", "_")}
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


@contextmanager
def running_servers(backends: set[str]) -> Iterator[Servers]:
    """The servers `backends` need (the peers use the same redis), stopped on the way out."""
    servers = start_servers(backends)
    try:
        yield servers
    finally:
        servers.stop()
