"""The archiver: ended tickets leave Redis for the archive once their grace has passed.

Who runs this: every gateway, as a background duty; a lease in Redis (``sd:archiver:lease``)
lets one of them at a time make a pass.

A ticket's journal append that ends it (CLOSED or SYSTEM_CLOSED) also records, in the same
atomic step, when it ended (the sorted set ``sd:ended``,
:mod:`surgedesk.adapters.redis.journal`). A pass takes the tickets ended more than ``grace_s``
ago (the window in which the customer still rates, and in which a watch or a history read is
served from Redis), oldest first, up to ``batch`` of them:

1. reads each ticket's stream (``XRANGE``),
2. writes the batch to the archive in **one transaction** (idempotent: rows already there are
   kept), and reads back how many events the archive holds for each,
3. releases from Redis, in one script, each ticket whose archived count equals its stream's
   length now: the stream is deleted, the ticket leaves ``sd:ended`` and its customer's
   ticket list (which is deleted with the customer's last ticket in Redis, so that Redis
   holds nothing of a customer whose conversations are all archived but four bits of a
   fixed-size filter, ``sd:archive:customers``; while some remain, a ``*`` at the list's
   head says the others are archived). A customer's latest ticket leaves
   after their earlier ones: continuity checks a new ticket against it. A stream that grew
   meanwhile is left for the next pass, which archives its new events too. Every release
   counts in ``sd:archive:released``: an open that read the customer's tickets in the
   archive names the count it read at, and Redis refuses it if tickets were released since
   (:mod:`surgedesk.adapters.redis.journal`).

Crash-safe at every step: killed before 2, nothing changed; between 2 and 3, the ticket is in
both places and the next pass writes nothing new and releases it; during 3, the script is atomic.
A ticket is never in neither place: Redis lets go only of what the archive holds, counted.
Reads do not care where a ticket is (:class:`~surgedesk.adapters.redis.journal.TicketJournal`
looks in the archive for a stream Redis no longer has), and an archived ticket takes no more
changes (its journal's length in Redis is 0 while its actor's version is not: every append is
refused as stale, and a keyed start retried after archiving finds its ticket in the archive
before it opens anything: :meth:`~surgedesk.adapters.desk.desk.Desk.start_conversation`).

Cost per pass: O(batch x events per ticket) in Redis reads, one database transaction and one
script; the database work runs on a worker thread, off the event loop.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from surgedesk.adapters.archive.store import ArchivedTicket, ArchiveStore
from surgedesk.adapters.redis.client import run_script, text
from surgedesk.adapters.redis.journal import (
    ARCHIVED_FILTER_KEY,
    ARCHIVED_FILTER_LUA,
    ENDED_KEY,
    RELEASED_KEY,
    agent_stream,
    stream_key,
    tickets_key,
)
from surgedesk.engine.errors import InvalidArgument

LEASE_KEY = "sd:archiver:lease"

_RELEASE = ARCHIVED_FILTER_LUA + """
-- KEYS: ended set, release count, filter of archived customers, streams[n], the tickets'
--       customers' lists[n]; ARGV: tickets[n], archived counts[n], customers[n]
local n = (#KEYS - 3) / 2
local released = 0
for i = 1, n do
  local ticket, stream, list = ARGV[i], KEYS[3 + i], KEYS[3 + n + i]
  local length = redis.call('XLEN', stream)
  if length == tonumber(ARGV[n + i]) or length == 0 then
    local listed = redis.call('LLEN', list)
    local marked = listed > 0 and redis.call('LINDEX', list, 0) == '*'
    local tickets = listed - (marked and 1 or 0)
    -- the customer's latest ticket is what continuity checks a new one against: it leaves
    -- Redis after the customer's earlier ones (which ended first, so are due first)
    if not (tickets > 1 and redis.call('LINDEX', list, -1) == ticket) then
      redis.call('DEL', stream)
      redis.call('ZREM', KEYS[1], ticket)
      local removed = redis.call('LREM', list, 0, ticket)
      if removed > 0 then
        if tickets - removed <= 0 then
          -- none left in Redis: the archive holds the customer, and the filter says so
          redis.call('DEL', list)
          mark_archived(KEYS[3], ARGV[2 * n + i])
        elseif not marked then
          redis.call('LPUSH', list, '*')  -- some of the customer's tickets are archived
        end
      end
      released = released + 1
    end
  end
end
if released > 0 then
  redis.call('INCR', KEYS[2])  -- what an open that read the archive checks (journal.py)
end
return released
"""

_LEASE = """
-- KEYS: lease; ARGV: holder, ms. Take the lease if free or ours; 1 if held by us now.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class ArchiveConfig:
    """The desk file's ``[archive]`` table."""

    grace_s: float = 86_400.0  # an ended ticket stays in Redis this long (ratings, reads)
    every_s: float = 5.0  # how often a gateway makes a pass
    batch: int = 200  # tickets per pass (one database transaction)
    retention_s: float = 0.0  # archived conversations are deleted this long after they
    #                           ended; 0: kept
    audit_retention_s: float = 0.0  # audit log entries are deleted this long after; 0: kept

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> ArchiveConfig:
        for key in table:
            if key not in cls.__dataclass_fields__:
                raise InvalidArgument(f"archive.{key}", "unknown key; expected grace_s, "
                                                        "every_s, batch, retention_s, "
                                                        "audit_retention_s")
        for key in ("grace_s", "every_s"):
            value = table.get(key, 1.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InvalidArgument(f"archive.{key}", "must be a number of seconds > 0")
        for key in ("retention_s", "audit_retention_s"):
            value = table.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidArgument(f"archive.{key}", "must be a number of seconds >= 0 "
                                                        "(0: kept)")
        batch = table.get("batch", 1)
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 10_000:
            raise InvalidArgument("archive.batch", "must be an integer in 1..10000")
        return cls(**table)


@dataclass
class ArchiverStats:
    """What the archiver has done, for the metrics."""

    archived: int = 0  # tickets released from Redis into the archive
    failed: int = 0  # passes that failed (database or Redis away): retried next pass
    expired: int = 0  # archived tickets deleted at the end of their retention
    trimmed: int = 0  # watch-stream copies older than the grace, trimmed
    lag_s: float = 0.0  # how long the oldest ticket due has waited past its grace


class Archiver:
    """One gateway's share of archiving (see the module docstring)."""

    def __init__(self, client: Any, store: ArchiveStore, grace_s: float = 86_400.0,
                 batch: int = 200, clock: Callable[[], float] = time.time,
                 lease_s: float = 60.0, retention_s: float = 0.0,
                 audit_retention_s: float = 0.0, time_scale: float = 1.0,
                 sweep_every: int = 60) -> None:
        self.retention_s, self.audit_retention_s = retention_s, audit_retention_s
        # The agents' watch streams hold copies of their tickets' events for resumes; copies
        # older than the grace (in wall time: stream ids are Redis's clock) are trimmed every
        # ``sweep_every`` passes, so an agent who left stops costing memory.
        self._wall_keep_ms = int(grace_s / time_scale * 1000)
        self._sweep_every, self._passes = sweep_every, 0
        self._redis = client
        self.store = store
        self.grace_s, self.batch = grace_s, batch
        self._clock = clock
        self._lease_ms = int(lease_s * 1000)
        self._holder = secrets.token_hex(8)
        self._release = client.register_script(_RELEASE)
        self._take_lease = client.register_script(_LEASE)
        self.stats = ArchiverStats()

    async def run_pass(self) -> int:
        """One pass, if this gateway holds the lease: the number of tickets released."""
        if not await run_script(self._redis, self._take_lease, [LEASE_KEY],
                                [self._holder, self._lease_ms]):
            return 0
        try:
            released = await self._pass()
            self._passes += 1
            if self._passes % self._sweep_every == 1 or self._sweep_every == 1:
                self.stats.trimmed += await self.trim_watch_streams()
            if self.retention_s > 0:
                self.stats.expired += await self.store.expire(
                    self._clock() - self.retention_s, self.batch)
            if self.audit_retention_s > 0:
                await self.store.expire_audit(self._clock() - self.audit_retention_s)
            return released
        except Exception:
            self.stats.failed += 1
            raise

    async def run_until_done(self, passes: int = 1000) -> int:
        """Passes until nothing due is left (or ``passes`` made): for tests and drains."""
        total = 0
        for _ in range(passes):
            released = await self.run_pass()
            total += released
            if released < self.batch:
                break
        return total

    async def trim_watch_streams(self) -> int:
        """Trim every agent's watch stream to the copies of the last grace (wall time):
        O(agents) commands. The number of entries removed."""
        seconds, micros = await self._redis.time()
        cutoff = int(seconds) * 1000 + int(micros) // 1000 - self._wall_keep_ms
        removed = 0
        async for key in self._redis.scan_iter(match=f"{agent_stream('')}*", count=1000):
            removed += int(await self._redis.xtrim(key, minid=cutoff, approximate=False))
        return removed

    async def _pass(self) -> int:
        now = self._clock()
        due = [(text(t), float(ended)) for t, ended in await self._redis.zrangebyscore(
            ENDED_KEY, "-inf", repr(now - self.grace_s), start=0, num=self.batch,
            withscores=True)]
        # the oldest due is the set's first: how far behind the archive is
        self.stats.lag_s = max(0.0, now - self.grace_s - due[0][1]) if due else 0.0
        if not due:
            return 0
        tickets: list[ArchivedTicket] = []
        gone: list[str] = []
        for ticket_id, ended in due:
            rows = await self._redis.xrange(stream_key(ticket_id))
            if not rows:  # released by a pass that died before its ZREM: only the entry left
                gone.append(ticket_id)
                continue
            events = tuple((text(cursor), bytes(fields[b"e"])) for cursor, fields in rows)
            opened = msgpack.unpackb(events[0][1], raw=False)
            tickets.append(ArchivedTicket(ticket_id, str(opened.get("customer_id", "")),
                                          ended, events))
        counts = await self.store.write(tickets, now)
        held = [(t.ticket_id, t.customer_id, counts.get(t.ticket_id, 0)) for t in tickets
                if counts.get(t.ticket_id, 0) >= len(t.events)]
        held += [(t, "", 0) for t in gone]  # its customer unknown: no list named ("")
        if not held:
            return 0
        released = int(await run_script(
            self._redis, self._release,
            [ENDED_KEY, RELEASED_KEY, ARCHIVED_FILTER_KEY, *[stream_key(t) for t, _, _ in held],
             *[tickets_key(c) for _, c, _ in held]],
            [*[t for t, _, _ in held], *[n for _, _, n in held], *[c for _, c, _ in held]]))
        self.stats.archived += released
        return released
