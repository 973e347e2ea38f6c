"""Fixtures shared by the memcache plugin's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pymemcache.client.base import Client  # type: ignore[import-untyped]

from tests.support.processes import ServerProcess


@pytest.fixture
def direct() -> Callable[[ServerProcess], Any]:
    """Plain pymemcache clients on one server, to see what the storage really wrote."""

    def client(server: ServerProcess) -> Any:
        return Client(
            (server.host, server.port), connect_timeout=2, timeout=2, default_noreply=False
        )

    return client
