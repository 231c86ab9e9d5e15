"""One way to open the engine's Redis clients.

redis-py's default pool refuses a command with ``MaxConnectionsError`` once 100 are in flight,
which a busy gateway reaches in a surge (every actor writing at once). The engine's clients use
a blocking pool instead: past ``max_connections`` a command waits its turn for a connection
(up to ``wait_s``, then a ConnectionError, which the gateway answers as UNAVAILABLE).

Commands travel back to back on one connection (:mod:`surgedesk.adapters.redis.client`); blocking
commands and transactions use the pool.

The library version is passed explicitly: left to itself, redis-py reads its own package
metadata from disk for every new connection, which a surge of new connections pays for.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis

from surgedesk.adapters.redis.client import PipelinedRedis

DEFAULT_MAX_CONNECTIONS = 256
GROUP_COMMIT_S = 0.002  # the longest a write waits for company under load (GroupCommit)

try:  # redis-py 7.1+: driver metadata in one object (lib_version alone is deprecated)
    from redis.driver_info import DriverInfo

    _DRIVER: dict[str, Any] = {"driver_info": DriverInfo(lib_version=redis.__version__)}
except ImportError:  # older redis-py
    _DRIVER = {"lib_version": redis.__version__}


def redis_client(url: str, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 wait_s: float = 20.0, group_commit_s: float = GROUP_COMMIT_S) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                    timeout=wait_s, **_DRIVER)
    return PipelinedRedis(connection_pool=pool, group_commit_s=group_commit_s)
