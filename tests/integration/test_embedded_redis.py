"""The embedded Redis server is real, and what it acknowledged survives kill -9."""

import pytest
import redis

from surgedesk.adapters.redis.embedded import EmbeddedRedis


@pytest.mark.parametrize("fsync", [None, "always"])
def test_the_embedded_server_answers_and_keeps_data_across_kill_9(tmp_path, fsync):
    server = (EmbeddedRedis(tmp_path / "data") if fsync is None
              else EmbeddedRedis(tmp_path / "data", appendfsync=fsync)).start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.info("server")["redis_version"].startswith("6.2")
        assert client.config_get("appendonly")["appendonly"] == "yes"
        # The default never postpones the AOF write past the reply (everysec can).
        assert client.config_get("appendfsync")["appendfsync"] == (fsync or "no")
        for i in range(500):
            client.xadd("journal", {"seq": i})
        client.set("ticket:t1", "queued")
        client.close()
        server.kill()  # no shutdown, no flush
        assert not server.alive()
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.xlen("journal") == 500
        assert client.get("ticket:t1") == b"queued"
        client.close()
    finally:
        server.stop()


def test_a_restarted_server_reuses_its_socket_and_folder(tmp_path):
    with EmbeddedRedis(tmp_path / "d") as server:
        redis.Redis.from_url(server.url).set("k", "v")
    with EmbeddedRedis(tmp_path / "d") as server:
        assert redis.Redis.from_url(server.url).get("k") == b"v"


def test_a_server_left_running_by_a_killed_supervisor_is_adopted_not_doubled(tmp_path):
    first = EmbeddedRedis(tmp_path / "d").start()
    redis.Redis.from_url(first.url).set("k", "v")
    orphan_pid = first.process.pid
    first.process = None  # the supervisor "dies" without stopping its server
    second = EmbeddedRedis(tmp_path / "d").start()
    try:
        assert second.adopted_pid == orphan_pid and second.process is None
        assert redis.Redis.from_url(second.url).get("k") == b"v"
    finally:
        second.stop()
    assert not second.alive()
