from __future__ import annotations

import pytest
from sessionware.testing import StorageConformance
from sessionware_postgres import PostgresStorage

from tests.support.postgres_servers import PostgresServer


class TestPostgresConformance(StorageConformance):
    @pytest.fixture
    def storage(self, postgres_server: PostgresServer, table: str) -> PostgresStorage:
        return PostgresStorage(url=postgres_server.url, table=table, gc_interval=0.1)

    @pytest.fixture
    def other_storage(self, postgres_server: PostgresServer, table: str) -> PostgresStorage:
        """Another table of the same database: reset must leave it alone."""
        return PostgresStorage(url=postgres_server.url, table=f"{table}_other")

    @pytest.fixture
    def other_client(self, postgres_server: PostgresServer, table: str) -> PostgresStorage:
        """A second pool on the same table, as another process would have."""
        return PostgresStorage(url=postgres_server.url, table=table)
