import asyncio

import pytest
import redis

from adapters.redis.server import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real Redis server for the integration tests, on a temporary unix socket."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    yield redis_server.url
    redis.Redis.from_url(redis_server.url).flushall()


@pytest.fixture
def run():
    return asyncio.run
