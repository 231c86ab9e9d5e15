import asyncio
import os

import pytest
import redis
from hypothesis import HealthCheck, settings

from surgedesk.adapters.redis.embedded import EmbeddedRedis

settings.register_profile(
    "ci", max_examples=150, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=60, deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real Redis server for the session, on a temporary unix socket."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """A clean database for each test."""
    redis.Redis.from_url(redis_server.url).flushall()
    yield redis_server.url


@pytest.fixture
def run():
    return asyncio.run
