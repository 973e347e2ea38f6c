"""The conformance suite that defines a sessionware storage, run against this one.

Every fixture below that the suite offers is overridden, so no test of it is skipped: a skip
would say which guarantee stays unproven.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sessionware.hookspecs import CompareAndSetStorage
from sessionware.testing import StorageConformance

from sessionware_example import ExampleStorage


class TestExampleConformance(StorageConformance):
    #: How coarse the backend's expiry clock is, in seconds: the expiry tests wait this much
    #: longer. Here expiry is compared to the microsecond; a backend that counts TTLs in whole
    #: seconds (memcached) says 1.0.
    ttl_resolution = 0.0

    @pytest.fixture
    def database(self, tmp_path: Path) -> str:
        return str(tmp_path / "sessions.db")

    # The return annotations are the type check: `mypy --strict` fails here unless the storage
    # has all six hooks with the contract's parameters and return types.

    @pytest.fixture
    def storage(self, database: str) -> CompareAndSetStorage:
        """A fresh storage for each test."""
        return ExampleStorage(path=database)

    @pytest.fixture
    def other_client(self, database: str) -> CompareAndSetStorage:
        """A second object on the same file and table, with its own connection as another
        process would have: compare-and-set must be atomic across both."""
        return ExampleStorage(path=database)

    @pytest.fixture
    def other_storage(self, database: str) -> CompareAndSetStorage:
        """Another storage beside this one (another table of the same file): a reset of
        `storage` must leave its keys alone."""
        return ExampleStorage(path=database, table="other_sessions")
