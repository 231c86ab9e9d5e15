import asyncio

import pytest
import ray
import redis

from adapters.redis.server import EmbeddedRedis


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for all Ray tests (it takes seconds to start)."""
    ray.init(num_cpus=2, include_dashboard=False, namespace="surgedesk",
             logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_redis(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("ray-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def clean_redis(ray_redis):
    redis.Redis.from_url(ray_redis.url).flushall()
    return ray_redis.url


@pytest.fixture
def run():
    return asyncio.run
