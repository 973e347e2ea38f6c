"""`storage_backend`: every installed storage, so each session test runs once per backend."""

from __future__ import annotations

import importlib
import importlib.util
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BACKENDS = {
    "memory": "sessionware_memory",
    "redis": "sessionware_redis",
    "redis-sentinel": "sessionware_redis",
    "redis-cluster": "sessionware_redis",
    "sqlite-file": "sessionware_sqlite",
    "sqlite-memory": "sessionware_sqlite",
    "memcache": "sessionware_memcache",
    "postgres": "sessionware_postgres",
}


@dataclass(frozen=True)
class Backend:
    """The `storage` and `storage_options` of a `Config` for one backend."""

    label: str
    storage: str
    options: dict[str, Any] = field(default_factory=dict)

    def config_kwargs(self) -> dict[str, Any]:
        return {"storage": self.storage, "storage_options": dict(self.options)}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None and _has_storage(module)
    except ImportError:
        return False


def _has_storage(module: str) -> bool:
    return any(name.endswith("Storage") for name in dir(importlib.import_module(module)))


def make_backend(label: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    if label == "memory":
        return Backend(label, "memory")
    if label == "redis":
        server = request.getfixturevalue("redis_server")
        return Backend(label, "redis", {"url": server.url, "key_prefix": prefix})
    if label == "redis-sentinel":
        sentinel = request.getfixturevalue("redis_sentinel")
        options = {"sentinels": sentinel.sentinels, "master_name": sentinel.master_name}
        return Backend(label, "redis", {**options, "key_prefix": prefix})
    if label == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        options = {"url": cluster.url, "cluster": True, "key_prefix": prefix}
        return Backend(label, "redis", options)
    if label == "sqlite-file":
        return Backend(label, "sqlite", {"database": str(tmp_path / "sessions.sqlite3")})
    if label == "sqlite-memory":
        return Backend(label, "sqlite", {"database": ":memory:"})
    if label == "memcache":
        server = request.getfixturevalue("memcached_server")
        return Backend(label, "memcache", {"servers": server.address, "key_prefix": prefix})
    if label == "memcache-two":
        servers = [server.address for server in request.getfixturevalue("memcached_two")]
        return Backend(label, "memcache", {"servers": servers, "key_prefix": prefix})
    if label == "postgres":
        server = request.getfixturevalue("postgres_server")
        table = f"t_{uuid.uuid4().hex[:16]}"
        return Backend(label, "postgres", {"url": server.url, "table": table})
    raise AssertionError(label)


@pytest.fixture(params=list(BACKENDS))
def storage_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    label: str = request.param
    if not _installed(BACKENDS[label]):
        pytest.skip(f"the {label} storage plugin is not installed")
    return make_backend(label, request, tmp_path)


# Where keys spread over several servers matters too: memcached across two of them.
SPREAD_BACKENDS = {**BACKENDS, "memcache-two": "sessionware_memcache"}


@pytest.fixture(params=list(SPREAD_BACKENDS))
def spread_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every backend of `storage_backend`, plus memcached over two servers."""
    label: str = request.param
    if not _installed(SPREAD_BACKENDS[label]):
        pytest.skip(f"the {label} storage plugin is not installed")
    return make_backend(label, request, tmp_path)
