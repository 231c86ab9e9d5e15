"""``kill -9`` of the archiving process at random points while tickets end: afterwards every
ended ticket is in exactly one place (the archive, once a pass has run), and its history is
event for event, cursor for cursor, what it was in Redis. On SQLite and on PostgreSQL."""

import asyncio
import random
import signal
import subprocess
import sys

import pytest

from surgedesk.adapters.archive.archiver import LEASE_KEY, Archiver
from surgedesk.adapters.archive.store import open_archive
from surgedesk.adapters.redis.journal import stream_key
from tests.integration.test_archive import a_desk, conversation

pytestmark = pytest.mark.slow
GRACE_S = 0.3


def start_archiver(redis_url, archive_url):
    proc = subprocess.Popen([sys.executable, "-m", "tests.archiver_process", redis_url,
                             archive_url, str(GRACE_S)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_kill_9_of_the_archiver_at_random_points_loses_and_doubles_nothing(
        redis_url, archive_url, run):
    rng = random.Random(20261205)

    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        history = {}
        kills = 0
        proc = start_archiver(redis_url, archive_url)
        try:
            for round_ in range(8):
                for i in range(12):  # tickets end; each history taken while still in Redis
                    t = await conversation(desk, f"c{round_}-{i}")
                    rows = await client.xrange(stream_key(t))
                    history[t] = [(c.decode(), bytes(f[b"e"])) for c, f in rows]
                await asyncio.sleep(rng.uniform(GRACE_S, GRACE_S + 0.4))
                proc.send_signal(signal.SIGKILL)  # wherever it is in its pass
                proc.wait()
                kills += 1
                await client.delete(LEASE_KEY)  # its lease would lapse in 0.3 s anyway
                proc = start_archiver(redis_url, archive_url)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        # Never in neither place, at any kill.
        counts = store.counts_now(list(history))
        for t in history:
            assert await client.exists(stream_key(t)) or counts[t] == len(history[t]), t
        assert store.tickets_now() > 0  # the killed archivers did archive
        await client.delete(LEASE_KEY)
        await Archiver(client, store, grace_s=0.0).run_until_done()
        counts = store.counts_now(list(history))
        for t, events in history.items():
            assert not await client.exists(stream_key(t)), t  # one place: the archive
            assert counts[t] == len(events)  # no event twice
            assert store.load_now(t) == events  # event for event, cursor for cursor
        assert kills == 8
        store.close()

    run(scenario())
