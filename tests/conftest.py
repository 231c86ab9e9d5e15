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


@pytest.fixture(scope="session")
def postgres_url():
    """One real PostgreSQL server for the session (tests/postgres.py)."""
    from tests.postgres import postgres_server, server_bin

    if server_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs the Debian package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request, tmp_path):
    """An empty archive database of each kind the engine supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.db'}"
        return
    import sqlalchemy as sa

    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a clean database for each test
        conn.execute(sa.text("DROP TABLE IF EXISTS archived_events, archived_tickets, audit_log, "
                             "alembic_version"))
    engine.dispose()
    yield url
