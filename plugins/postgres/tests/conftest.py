"""Fixtures of the postgres plugin's tests, beside the shared `postgres_server`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg  # type: ignore[import-untyped]
import pytest
import pytest_asyncio

from tests.support.postgres_servers import PostgresServer, start_postgres


@pytest.fixture
def table() -> str:
    """A table name no other test uses, so tests can share one server."""
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def fresh_postgres() -> Iterator[PostgresServer]:
    """A cluster of this test alone: it may be stopped and restarted."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def admin(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, to look at the tables from outside the storage."""
    connection = await asyncpg.connect(postgres_server.url)
    try:
        yield connection
    finally:
        await connection.close()
