from __future__ import annotations

from pathlib import Path

import pytest
from sessionware.testing import StorageConformance
from sessionware_sqlite import SQLiteStorage

# aiosqlite's worker thread dies noisily when it answers a closed loop; make that a failure.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


class TestSQLiteFileConformance(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> SQLiteStorage:
        return SQLiteStorage(database=tmp_path / "sessions.sqlite3", gc_interval=0.1)

    @pytest.fixture
    def other_storage(self, tmp_path: Path) -> SQLiteStorage:
        return SQLiteStorage(database=tmp_path / "sessions.sqlite3", table="other_sessions")

    @pytest.fixture
    def other_client(self, tmp_path: Path) -> SQLiteStorage:
        """Its own connection and worker thread on the same file and table, as another
        process would have."""
        return SQLiteStorage(database=tmp_path / "sessions.sqlite3")


class TestSQLiteMemoryConformance(StorageConformance):
    @pytest.fixture
    def storage(self) -> SQLiteStorage:
        return SQLiteStorage(database=":memory:", gc_interval=0.1)

    @pytest.fixture
    def other_storage(self) -> SQLiteStorage:
        return SQLiteStorage(url="sqlite:///:memory:")

    # No other_client: an in-memory database lives in one connection, nothing else reaches it.
