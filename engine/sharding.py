"""Which shard an entity lives on: a stable hash, the same in every process.

Python's ``hash()`` of a string differs between processes (hash randomisation), so ids are
hashed with BLAKE2b. Ids map to a fixed number of logical shards; shards, not entities, are
placed on hosts (Akka cluster sharding, Orleans). O(len(id)).
"""

from __future__ import annotations

import hashlib


def shard_of(entity_id: str, shards: int) -> int:
    if shards < 1:
        raise ValueError("shards must be >= 1")
    digest = hashlib.blake2b(entity_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards
