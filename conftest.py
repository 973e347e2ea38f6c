"""Fixtures shared by the core tests and every plugin's tests."""

pytest_plugins = [
    "tests.support.redis_servers",
    "tests.support.memcached_servers",
    "tests.support.postgres_servers",
    "tests.support.backends",
    "tests.support.flavours",
    "tests.support.demo",
]
