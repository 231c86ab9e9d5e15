"""An archiver on its own, as a gateway runs it, for the tests that kill it:
``python -m tests.archiver_process REDIS_URL ARCHIVE_URL GRACE_S``. It makes passes (batches
of 5) until killed, and prints one line per pass that released tickets."""

import asyncio
import sys

from surgedesk.adapters.archive.archiver import Archiver
from surgedesk.adapters.archive.store import open_archive
from surgedesk.adapters.redis.connect import redis_client


async def main(redis_url: str, archive_url: str, grace_s: float) -> None:
    store = open_archive(archive_url)
    archiver = Archiver(redis_client(redis_url), store, grace_s=grace_s, batch=5, lease_s=0.3)
    print("ready", flush=True)
    while True:
        released = await archiver.run_pass()
        if released:
            print(f"released {released}", flush=True)
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
