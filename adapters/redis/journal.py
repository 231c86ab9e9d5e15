"""Ticket journals in Redis: one stream of msgpack events per ticket.

Who runs this: the ticket actors (writers, one per ticket at a time) and the watch streams
(readers), over ``redis.asyncio``.

A ticket's stream ``sd:t:{id}`` holds its events in order; the stream entry id is the event's
cursor, so a watch resumes with ``XREAD`` after the last cursor it delivered -- nothing lost,
nothing repeated. :meth:`TicketJournal.append` writes a batch with one Lua script that first
checks the stream's length against the writer's version: a second writer (a stale actor after
a failover, or another gateway's copy of the ticket) is refused with :class:`StaleWriter`
instead of interleaving events, and the actor loads the ticket again and decides again on what
is there now (optimistic concurrency, as event stores do with an expected revision). The script also
keeps the customer's open-ticket pointer (``sd:c:{customer}:open``) and ticket list in the same
atomic step, so continuity never sees a ticket half opened or half closed.

Every appended event also goes, in the same step, to one feed stream (``sd:feed``, about the
last two minutes) saying which streams it went to and at which cursors: a gateway follows all
of its watchers' streams by reading that one stream (:mod:`surgedesk.adapters.redis.stream_hub`).

The client is answered only after ``append`` returns: the events are in Redis (and in its
append-only file) first.

A new ticket's routing fact (its ``TicketQueued``) is written in the same step to the routing
journal (:mod:`surgedesk.adapters.redis.dispatch_journal`), numbered from that journal's counter
(:meth:`TicketJournal.append_routed`): the ticket and its place in routing land together or not
at all, and a start needs no second round trip.

Opening a ticket for a customer who has another one open is refused in the same script
(:class:`CustomerHasOpenTicket`): two concurrent starts on two channels cannot both open one.
So is an open whose ``previous_ticket_id`` is not the customer's latest ticket
(:class:`CustomerHasEarlierTicket`, naming it): a start needs no read of the customer's
tickets before it writes -- the common case, a new customer, is one round trip, and a
returning customer's history is linked to the right ticket even when starts race.

With an archive (:mod:`surgedesk.adapters.archive`), a customer's ticket list holds only the
tickets Redis still has; the archiver takes the rest out of it, and the list itself once none
is left. The open script then refuses once (:class:`CustomerInArchive`) an open that needs the
archive's word -- a customer of whom Redis holds nothing but whom the filter of archived
customers (:data:`ARCHIVED_FILTER_KEY`, a Bloom filter of fixed size) may hold, or a keyed open
(a deterministic id) of a customer with archived tickets -- and takes it when it names the archiver's release count
(``sd:archive:released``) at which the caller read the archive: if nothing was released since,
what the caller read (the customer's latest ticket; that the opened one is not archived) still
holds. A new customer's start stays one round trip.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgpack
import redis.asyncio as aioredis

from surgedesk.adapters.redis import dispatch_journal
from surgedesk.adapters.redis.client import run_script, text
from surgedesk.adapters.redis.dispatch_journal import RoutingEntry
from surgedesk.engine.errors import WorldChangedError
from surgedesk.engine.events import Event as RoutingEvent
from surgedesk.engine.outcomes import Count
from surgedesk.engine.ticket import Event, StateMoved, TicketOpened, event_from_dict, event_to_dict

AGENT_STREAM_KEEP = 10_000  # entries per agent watch stream; the tickets' own streams keep all
FEED_KEY = "sd:feed"  # every appended event, with where it went: what watchers are fed from
FEED_SEQ_KEY = FEED_KEY + ":seq"  # how many entries the feed has had (they are numbered)
FEED_KEEP_MS = 120_000  # the feed keeps about the last two minutes

# A Bloom filter of the customers whose tickets all left Redis for the archive: 2^24 bits
# (2 MiB, fixed), four bit positions per customer from the SHA-1 of their id. A new customer is
# told apart from one the archive holds without reading the archive: with a million such
# customers 0.2% of new customers' starts (four million: 2%) read it for nothing; it is never
# wrong the other way. Erasure leaves the bits (they are shared and name no one).
ARCHIVED_FILTER_KEY = "sd:archive:customers"
ARCHIVED_FILTER_LUA = """
local function filter_bits(customer)
  local h = redis.sha1hex(customer)
  return {tonumber(string.sub(h, 1, 6), 16), tonumber(string.sub(h, 7, 12), 16),
          tonumber(string.sub(h, 13, 18), 16), tonumber(string.sub(h, 19, 24), 16)}
end
local function maybe_archived(filter, customer)
  for _, bit in ipairs(filter_bits(customer)) do
    if redis.call('GETBIT', filter, bit) == 0 then return false end
  end
  return true
end
local function mark_archived(filter, customer)
  for _, bit in ipairs(filter_bits(customer)) do redis.call('SETBIT', filter, bit, 1) end
end
"""

_APPEND = ARCHIVED_FILTER_LUA + """
-- KEYS: stream, open pointer, customer's tickets, timers, counters, feed, routing stream,
--       its counter, ended tickets, the archiver's release count, the filter of archived
--       customers, mirror streams...
-- ARGV: version, n, events[n], op, ticket id, deadline, m counters, (field, amount)[m],
--       the customer's previous ticket (an open: the one its history continues),
--       a routing entry ('' for none), when it ended (a close: engine seconds),
--       (an open:) the release count the archive was read at ('' for not read), '1' if
--       tickets are archived, '1' if the ticket's id is deterministic (an idempotency key),
--       the customer
local stream = KEYS[1]
if redis.call('XLEN', stream) ~= tonumber(ARGV[1]) then
  return redis.error_reply('STALE ' .. redis.call('XLEN', stream))
end
local n = tonumber(ARGV[2])
local m = tonumber(ARGV[6 + n])
local op = ARGV[3 + n]
if op == 'open' then
  local listed = redis.call('LLEN', KEYS[3])
  local read_at = ARGV[10 + n + 2 * m]
  if ARGV[11 + n + 2 * m] == '1' then
    -- Tickets leave Redis for the archive. A customer Redis holds no ticket of who may be in
    -- the archive (the filter says so), or a keyed open of a customer some of whose tickets
    -- are archived ('*' heads the list), needs what the archive says (their latest ticket;
    -- whether this one is there), read with no release since: the caller reads it and opens
    -- again naming the release count it read at.
    local ask
    if listed == 0 then
      ask = maybe_archived(KEYS[11], ARGV[13 + n + 2 * m])
    else
      ask = ARGV[12 + n + 2 * m] == '1' and redis.call('LINDEX', KEYS[3], 0) == '*'
    end
    local released = redis.call('GET', KEYS[10]) or '0'
    if ask and read_at ~= released then
      return redis.error_reply('READARCHIVE ' .. released)
    end
  end
  local current = redis.call('GET', KEYS[2])
  if current and current ~= ARGV[4 + n] then
    return redis.error_reply('OPEN ' .. current)
  end
  -- continuity: the new ticket names the customer's latest one as its previous (with no
  -- ticket in Redis, the archive's latest, which the caller read)
  if listed > 0 or read_at == '' then
    local last = redis.call('LINDEX', KEYS[3], -1) or ''
    if last ~= ARGV[7 + n + 2 * m] then
      return redis.error_reply('PREVIOUS =' .. last)
    end
  end
end
local ticket = ARGV[4 + n]
local now = redis.call('TIME')
local feed_min = (tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)) - FEED_KEEP_MS
local ids = {}
for i = 1, n do
  ids[i] = redis.call('XADD', stream, '*', 'e', ARGV[2 + i])
  local copies = {}
  for k = 12, #KEYS do
    -- watch streams are copies: keep about the last AGENT_STREAM_KEEP entries of each
    copies[#copies + 1] = KEYS[k]
    copies[#copies + 1] = redis.call('XADD', KEYS[k], 'MAXLEN', '~', 'AGENT_STREAM_KEEP', '*', 't', ticket, 'c', ids[i], 'e', ARGV[2 + i])
  end
  -- the gateways' watchers read this one stream (adapters/redis/stream_hub.py); numbered,
  -- so that a reader knows it missed none
  local seq = redis.call('INCR', KEYS[6] .. ':seq')
  redis.call('XADD', KEYS[6], 'MINID', '~', feed_min, '*', 'n', seq, 's', stream, 'c', ids[i], 't', ticket, 'e', ARGV[2 + i], 'm', cmsgpack.pack(copies))
end
local deadline = ARGV[5 + n]
if deadline == '' then
  redis.call('ZREM', KEYS[4], ticket)
else
  redis.call('ZADD', KEYS[4], deadline, ticket)
end
for j = 0, m - 1 do
  redis.call('HINCRBYFLOAT', KEYS[5], ARGV[7 + n + 2 * j], ARGV[8 + n + 2 * j])
end
if op == 'open' then
  redis.call('SET', KEYS[2], ticket)
  if ARGV[11 + n + 2 * m] == '1' and ARGV[7 + n + 2 * m] ~= '' and
      redis.call('LLEN', KEYS[3]) == 0 then
    redis.call('RPUSH', KEYS[3], '*')  -- back after their tickets were archived
  end
  redis.call('RPUSH', KEYS[3], ticket)
elseif op == 'close' then
  if redis.call('GET', KEYS[2]) == ticket then
    redis.call('DEL', KEYS[2])
  end
  -- ended: the archiver moves it to the database once its grace has passed
  redis.call('ZADD', KEYS[9], ARGV[9 + n + 2 * m], ticket)
end
-- the routing fact of this change, numbered like every routing entry (dispatch_journal.py)
local routing = ARGV[8 + n + 2 * m]
if routing ~= '' then
  local rseq = redis.call('INCR', KEYS[8])
  return {ids, rseq, redis.call('XADD', KEYS[7], '*', 'n', rseq, 'e', routing)}
end
return {ids, 0, ''}
""".replace("'AGENT_STREAM_KEEP'", f"'{AGENT_STREAM_KEEP}'").replace(
    "FEED_KEEP_MS", str(FEED_KEEP_MS))


_ERASE = """
-- KEYS: the ticket's stream, ended set, timers, feed, agent streams...; ARGV: ticket id.
-- Every copy of the ticket's events on the feed and the agents' watch streams goes, then the
-- ticket's own stream and its places in the ended set and the timers.
local ticket = ARGV[1]
local removed = 0
for k = 4, #KEYS do
  local rows = redis.call('XRANGE', KEYS[k], '-', '+')
  for _, row in ipairs(rows) do
    local fields = row[2]
    for f = 1, #fields, 2 do
      if fields[f] == 't' and fields[f + 1] == ticket then
        removed = removed + redis.call('XDEL', KEYS[k], row[1])
        break
      end
    end
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ticket)
redis.call('ZREM', KEYS[3], ticket)
return removed
"""

DECIDE_ATTEMPTS = 3  # an owner refused as stale loads and decides again, at most this often


class StaleWriter(WorldChangedError):
    """Another writer appended to this ticket since this one read it."""


S = TypeVar("S")
R = TypeVar("R")


async def decide_fresh(decide: Callable[[S], Awaitable[R]], load: Callable[[], Awaitable[S]],
                       state: S) -> R:
    """Optimistic concurrency for an actor over its journal: ``decide(state)`` (decide and
    append, the append fenced by the version the state was loaded at); if another owner wrote
    first (:class:`StaleWriter`), ``load()`` the journal as it is now and decide again, at most
    :data:`DECIDE_ATTEMPTS` times. O(one decision), plus a load per stale attempt."""
    for attempt in range(1, DECIDE_ATTEMPTS + 1):
        try:
            return await decide(state)
        except StaleWriter:
            if attempt == DECIDE_ATTEMPTS:
                raise
            state = await load()
    raise AssertionError("unreachable")  # the loop returns or raises


class _CustomersTicket(WorldChangedError):
    """An open refused for what the customer's tickets are: names the customer and the
    ticket that decides."""

    template = ""

    def __init__(self, customer_id: str, ticket_id: str) -> None:
        super().__init__(self.template.format(customer=customer_id, ticket=ticket_id))
        self.customer_id = customer_id
        self.ticket_id = ticket_id

    def __reduce__(self):  # crosses process boundaries (Ray) by pickle
        return (type(self), (self.customer_id, self.ticket_id))


class CustomerHasEarlierTicket(_CustomersTicket):
    """An open named another previous ticket than the customer's latest (``ticket_id``;
    "" if the customer has none): open again naming that one."""

    template = "customer {customer!r}'s latest ticket is {ticket!r}"


class CustomerInArchive(WorldChangedError):
    """An open that needs what the archive says of the customer first (their latest ticket,
    and whether the ticket opened is archived already): read it and open again naming
    ``released``, the archiver's release count the read is valid at."""

    def __init__(self, customer_id: str, released: str) -> None:
        super().__init__(f"customer {customer_id!r}: read the archive at release {released}")
        self.customer_id = customer_id
        self.released = released

    def __reduce__(self):  # crosses process boundaries (Ray) by pickle
        return (type(self), (self.customer_id, self.released))


class CustomerHasOpenTicket(_CustomersTicket):
    """The customer already has an open ticket (continuity): use that one."""

    template = "customer {customer!r} already has open ticket {ticket!r}"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    cursor: str
    event: Event


def _cursor_key(cursor: str) -> tuple[int, int]:
    """A stream id ``"ms-seq"`` as a pair that orders as Redis orders ids."""
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq or 0)


def encode(event: Event) -> bytes:
    return msgpack.packb(event_to_dict(event), use_bin_type=True)


def decode(payload: bytes) -> Event:
    return event_from_dict(msgpack.unpackb(payload, raw=False))


TIMERS_KEY = "sd:timers"  # sorted set: ticket id -> when its next timer is due
ENDED_KEY = "sd:ended"  # sorted set: ended ticket id -> when it ended (the archiver's queue)
RELEASED_KEY = "sd:archive:released"  # how many times the archiver has released tickets
ARCHIVED_MARK = "*"  # heads a customer's ticket list once some of their tickets are archived
COUNTERS_KEY = "sd:counters"  # hash: counter_field(metric, labels) -> total
_ROUTING_KEYS = (dispatch_journal.STREAM, dispatch_journal.seq_key())  # where starts queue


@functools.lru_cache(maxsize=4096)  # a few metrics times their label values, on every append
def counter_field(metric: str, labels: tuple[tuple[str, str], ...]) -> bytes:
    return msgpack.packb([metric, [list(pair) for pair in labels]], use_bin_type=True)


def parse_counter_field(field: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
    metric, labels = msgpack.unpackb(field, raw=False)
    return metric, tuple((k, v) for k, v in labels)


def agent_stream(agent_id: str) -> str:
    """The agent's watch stream: copies of the events of tickets it holds, is offered, is
    consulted on, or (supervisors) is alarmed about. Bounded: about the last
    :data:`AGENT_STREAM_KEEP` entries are kept (a watcher further behind resumes from the
    oldest kept; each ticket's own stream keeps its whole history)."""
    return f"sd:a:{agent_id}"


def stream_key(ticket_id: str) -> str:
    return f"sd:t:{ticket_id}"


def open_key(customer_id: str) -> str:
    return f"sd:c:{customer_id}:open"


def tickets_key(customer_id: str) -> str:
    return f"sd:c:{customer_id}:tickets"


class ArchiveReader(Protocol):
    """Where a ticket's journal is once it has left Redis (:mod:`surgedesk.adapters.archive`)."""

    async def load(self, ticket_id: str) -> list[tuple[str, bytes]] | None:
        """The ticket's events as ``(cursor, msgpack payload)`` in order; None if absent."""
        ...

    async def latest_of(self, customer_id: str, ticket_id: str = "") -> tuple[str, bool]:
        """The customer's latest archived ticket ("" for none), and whether ``ticket_id``
        is archived."""
        ...

    async def customer_count(self, customer_id: str) -> int:
        """How many tickets of the customer are archived."""
        ...

    async def customer_page(self, customer_id: str, offset: int, limit: int) -> list[str]:
        """``limit`` ids of the customer's archived tickets from ``offset``, in the order
        they ended."""
        ...

    async def archived_among(self, ticket_ids: Sequence[str]) -> set[str]:
        """Which of ``ticket_ids`` are archived."""
        ...


class TicketJournal:
    """Tickets' journals: in Redis while live, and -- with an ``archive`` -- read from the
    archive once the archiver has moved them (a stream that is not in Redis is looked for
    there), so a reader never cares where a ticket lives."""

    def __init__(self, client: aioredis.Redis, archive: ArchiveReader | None = None) -> None:
        # redis-py's reply types are unions over decode_responses; this client never decodes.
        self._redis: Any = client
        self._append = client.register_script(_APPEND)
        self._erase = client.register_script(_ERASE)
        self.archive = archive

    async def append(self, ticket_id: str, customer_id: str, version: int,
                     events: Sequence[Event], *, deadline_s: float | None = None,
                     counts: Sequence[Count] = (), mirrors: Sequence[str] = ()) -> list[str]:
        """Append ``events`` (see :meth:`append_routed`); returns their cursors."""
        cursors, _ = await self.append_routed(ticket_id, customer_id, version, events,
                                              deadline_s=deadline_s, counts=counts,
                                              mirrors=mirrors)
        return cursors

    async def append_routed(self, ticket_id: str, customer_id: str, version: int,
                            events: Sequence[Event], *, deadline_s: float | None = None,
                            counts: Sequence[Count] = (), mirrors: Sequence[str] = (),
                            routing: tuple[RoutingEvent, float] | None = None,
                            archive_read_at: str = "", keyed: bool = False,
                            ) -> tuple[list[str], RoutingEntry | None]:
        """Append ``events`` if the stream holds exactly ``version`` events.
        O(len(events) * (1 + len(mirrors)) + len(counts) + log tickets with timers).

        In the same atomic step: the ticket's next timer is set to ``deadline_s`` (or cleared),
        ``counts`` are added to the counters, each event is copied to the agent streams
        ``mirrors`` (the watch streams of the agents concerned), and one entry per event goes
        to the feed (:data:`FEED_KEY`) naming the streams it went to, with their cursors, and
        ``routing`` -- a routing event and its time, such as a new ticket's ``TicketQueued``
        -- goes to the routing journal, numbered (:mod:`surgedesk.adapters.redis.dispatch_journal`).
        Returns the events' cursors and the routing entry written (None without one).
        Raises :class:`StaleWriter` (and writes nothing) if another writer got there first;
        for an open, :class:`CustomerHasOpenTicket` or :class:`CustomerHasEarlierTicket` (and
        writes nothing) if the customer has an open ticket or a latest ticket other than the
        opened one's ``previous_ticket_id``; and, with an archive, :class:`CustomerInArchive`
        if the open needs what the archive says of the customer -- a customer Redis holds no
        ticket of, or a ``keyed`` open (the ticket's id derived from an idempotency key) of one
        with archived tickets -- unless ``archive_read_at``
        names the archiver's release count that reading was made at and nothing was released
        since (then ``previous_ticket_id`` is taken as read there).
        """
        if not events:
            return [], None
        op, previous, ended = "", "", 0.0
        for e in events:
            if isinstance(e, TicketOpened):
                op, previous = "open", e.previous_ticket_id
            elif isinstance(e, StateMoved) and e.to_state in ("CLOSED", "SYSTEM_CLOSED"):
                op, ended = "close", e.at_s
        args: list[Any] = [version, len(events), *[encode(e) for e in events], op, ticket_id,
                           "" if deadline_s is None else repr(float(deadline_s)), len(counts)]
        for metric, labels, amount in counts:
            args += [counter_field(metric, labels), repr(float(amount))]
        args.append(previous)
        args.append(dispatch_journal.encode(*routing) if routing is not None else "")
        args.append(repr(float(ended)))
        args += [archive_read_at, "1" if self.archive is not None else "0",
                 "1" if keyed else "0", customer_id]
        keys = [stream_key(ticket_id), open_key(customer_id), tickets_key(customer_id),
                TIMERS_KEY, COUNTERS_KEY, FEED_KEY, *_ROUTING_KEYS, ENDED_KEY, RELEASED_KEY,
                ARCHIVED_FILTER_KEY, *[agent_stream(a) for a in mirrors]]
        try:
            ids, routed_seq, routed_id = await run_script(self._redis, self._append, keys, args)
        except aioredis.ResponseError as exc:
            if str(exc).startswith("OPEN "):
                raise CustomerHasOpenTicket(customer_id, str(exc)[5:]) from None
            if str(exc).startswith("READARCHIVE "):
                raise CustomerInArchive(customer_id, str(exc)[12:]) from None
            if str(exc).startswith("PREVIOUS ="):
                raise CustomerHasEarlierTicket(customer_id, str(exc)[10:]) from None
            if str(exc).startswith("STALE"):
                raise StaleWriter(
                    f"ticket {ticket_id}: journal has moved on ({exc}), expected {version}"
                ) from None
            raise
        cursors = [text(i) for i in ids]
        if routing is None:
            return cursors, None
        return cursors, RoutingEntry(int(routed_seq), text(routed_id), *routing)

    async def length(self, ticket_id: str) -> int:
        """How many events the ticket's journal holds (its version). O(1): one XLEN."""
        return int(await self._redis.xlen(stream_key(ticket_id)))

    async def load(self, ticket_id: str) -> list[JournalEntry]:
        """Every event of the ticket, in order, from Redis or else the archive. O(events)."""
        rows = await self._redis.xrange(stream_key(ticket_id))
        if not rows:
            return await self.archived(ticket_id)
        return [JournalEntry(text(cursor), decode(fields[b"e"])) for cursor, fields in rows]

    async def archived(self, ticket_id: str, after: str = "") -> list[JournalEntry]:
        """The ticket's events after ``after`` as the archive holds them ([] if it does not,
        or there is no archive). O(events)."""
        if self.archive is None:
            return []
        rows = await self.archive.load(ticket_id)
        key = _cursor_key(after) if after and after != "0" else (-1, -1)
        return [JournalEntry(cursor, decode(payload)) for cursor, payload in rows or ()
                if _cursor_key(cursor) > key]

    async def read_after(self, ticket_id: str, cursor: str, *, block_ms: int | None = None,
                         count: int = 500) -> list[JournalEntry]:
        """Events after ``cursor`` ("" or "0" for the start); waits up to ``block_ms`` for some."""
        start = cursor or "0"
        if block_ms is None:
            rows = await self._redis.xrange(stream_key(ticket_id), min=f"({start}"
                                            if start != "0" else "-", count=count)
            return [JournalEntry(text(c), decode(f[b"e"])) for c, f in rows]
        reply = await self._redis.xread({stream_key(ticket_id): start}, count=count,
                                        block=block_ms)
        entries: list[JournalEntry] = []
        for _stream, rows in reply or []:
            entries += [JournalEntry(text(c), decode(f[b"e"])) for c, f in rows]
        return entries

    async def due_tickets(self, now_s: float, limit: int = 500) -> list[str]:
        """Tickets whose next timer is due at ``now_s``, earliest first. O(log n + limit)."""
        rows = await self._redis.zrangebyscore(TIMERS_KEY, "-inf", repr(float(now_s)), start=0,
                                               num=limit)
        return [text(r) for r in rows]

    async def reschedule(self, ticket_id: str, deadline_s: float | None) -> None:
        if deadline_s is None:
            await self._redis.zrem(TIMERS_KEY, ticket_id)
        else:
            await self._redis.zadd(TIMERS_KEY, {ticket_id: deadline_s})

    async def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        rows = await self._redis.hgetall(COUNTERS_KEY)
        return {parse_counter_field(k): float(v) for k, v in rows.items()}

    async def open_tickets(self) -> AsyncIterator[str]:
        """Every open ticket (one per customer with one), by a SCAN of the open-ticket keys:
        O(keys) in batches, without blocking Redis."""
        async for key in self._redis.scan_iter(match="sd:c:*:open", count=1000):
            value = await self._redis.get(key)
            if value is not None:
                yield text(value)

    async def open_ticket_of(self, customer_id: str) -> str | None:
        value = await self._redis.get(open_key(customer_id))
        return None if value is None else text(value)

    async def erase(self, ticket_id: str, agent_ids: Sequence[str]) -> int:
        """Erase the ticket from Redis: its stream, its timer and ended entries, and every copy
        of its events on the feed and on the watch streams of ``agent_ids``. Returns the copies
        removed. O(entries of those streams): an operator's rare call."""
        keys = [stream_key(ticket_id), ENDED_KEY, TIMERS_KEY, FEED_KEY,
                *[agent_stream(a) for a in agent_ids]]
        return int(await run_script(self._redis, self._erase, keys, [ticket_id]))

    async def forget_customer(self, customer_id: str) -> None:
        """Remove the customer's ticket list and open pointer (after its tickets' erasure)."""
        await self._redis.delete(tickets_key(customer_id), open_key(customer_id))

    async def ended_in_redis(self) -> int:
        """Ended tickets still in Redis (in their grace, or not yet archived). O(1)."""
        return int(await self._redis.zcard(ENDED_KEY))

    async def tickets_of(self, customer_id: str) -> list[str]:
        """The customer's tickets Redis holds, oldest first (with an archive, the rest are
        there: :meth:`customer_tickets`). O(their number)."""
        return [t for t in (v.decode() for v in
                            await self._redis.lrange(tickets_key(customer_id), 0, -1))
                if t != ARCHIVED_MARK]

    async def customer_tickets(self, customer_id: str, start: int,
                               end: int | None) -> tuple[int, list[str]]:
        """The customer's tickets at positions ``start``..``end`` (``None``: the last; a
        negative ``start`` counts from the end, as in a slice) of all they have had, oldest
        first, wherever each lives, and how many there are. The archived come first (in the
        order they ended: a customer has one open ticket at a time, so that is the order they
        were opened, and the archiver takes the oldest first); then those only Redis holds. A
        ticket keeps its position as it moves. Cost: the customer's list in Redis (the tickets
        of the last grace), and with an archive one count and one page read there,
        O(start + page) by index."""
        in_redis = await self.tickets_of(customer_id)
        archived, only_redis = 0, in_redis
        if self.archive is not None:
            both = await self.archive.archived_among(in_redis) if in_redis else set()
            only_redis = [t for t in in_redis if t not in both]
            archived = await self.archive.customer_count(customer_id)
        total = archived + len(only_redis)
        end = total if end is None else min(end, total)
        start = max(0, total + start if start < 0 else start)
        ids: list[str] = []
        if self.archive is not None and start < min(end, archived):
            ids = await self.archive.customer_page(customer_id, start, min(end, archived) - start)
        ids += only_redis[max(0, start - archived):max(0, end - archived)]
        return total, ids
