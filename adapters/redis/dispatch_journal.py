"""The dispatcher's journal: routing events in one Redis stream, replayed to rebuild the core.

Who runs this: every gateway (its copy of the dispatcher), on its asyncio loop.

:class:`DispatcherService` owns a :class:`~surgedesk.engine.dispatcher.DispatcherCore`. Every event
is appended to the stream ``sd:dispatch`` (msgpack, with the ``now_s`` it is applied at) *before*
the core applies it, and events are applied in exactly the stream's order. The core is
deterministic, so on start :meth:`DispatcherService.start` replays the stream and gets back the
same lines in the same order, the same agent loads and the same measured rates -- a killed
dispatcher loses nothing. Assignments made during replay were delivered (or are re-delivered
by the desk's reconciliation) and are not returned again.

Two kinds of writer append to the stream:

* the dispatcher itself (:meth:`DispatcherService.submit`): concurrent callers are coalesced
  into micro-batches by one worker, one script call to Redis for up to ``batch_max`` events;
* a ticket's own append (:mod:`surgedesk.adapters.redis.journal`): a new ticket's ``TicketQueued``
  is written in the same atomic step as the ticket, so a start costs one round trip to Redis and
  a crash cannot leave a ticket that routing never heard of. The desk then hands the entry to
  :meth:`DispatcherService.landed`, which applies it without reading Redis.

Every entry is numbered (field ``n``, from the counter ``{stream}:seq``, incremented in the
same atomic step as the entry is added), so the stream's order is the numbers' order and a gap
is visible: the dispatcher applies entry ``n`` only after ``n - 1``. An entry handed over
before its predecessors waits for them; the dispatcher's own appends bring back, in the same
script, every entry it has not applied yet, and a gap no one fills within
:data:`GAP_WAIT_S` (its writer's caller was cancelled or died) is read from Redis.

Several gateways (``replica=True``) each run a copy of the dispatcher over the one log. The
core is deterministic and every copy applies the same entries in the same order, so every copy
makes the same decisions; each decision is *delivered* by the gateway whose entry caused it
(the outcome of :meth:`~DispatcherService.landed` or :meth:`~DispatcherService.submit` goes to
its caller), never by the others, so an assignment reaches its ticket once. A replica also reads
the log as it grows (one ``XREAD BLOCK`` at a time) so that it stays current; outcomes of
entries no caller here claims are another gateway's and are dropped after
:data:`_UNCLAIMED_S` (a gateway that died before delivering is covered by the desk's
reconciliation).

The log is trimmed behind its slowest reader. Every replica records where it is, every
:data:`REPLICA_BEAT_S`, in the hash ``{stream}:replicas`` (``"seq cursor wall_s"``; ``0`` while
it loads, which holds any trim back). A snapshot is stored only if it is newer than the one
stored (``{stream}:snapshot:at`` holds its number and id), and the same script then trims the
log (``XTRIM MINID``) up to the oldest of the stored snapshot and the positions of the replicas
heard from within :data:`REPLICA_STALE_S`; the others are forgotten. A replica that finds
entries trimmed before it read them (it was silent longer than that) is :attr:`broken`: it
takes no more calls, and its gateway stops and starts again from the snapshot.

An event the core refuses was journaled all the same; it is refused again, identically, on
replay, and changes nothing either time.

Redis failing under a batch (killed, restarting) is answered with :class:`Recovering` and the
core is left as it was. The append may nevertheless have landed (the reply was lost); the next
script brings those entries back and they are applied as a replay would: memory never drifts
from the journal. Assignments of entries applied without a caller waiting for them are handed
to the next caller with its own (the desk delivers every assignment it gets back).

Snapshots keep restarts short: every ``snapshot_every`` events the core is saved as a
versioned document of plain data (:mod:`surgedesk.engine.snapshot`, msgpack) under
``{stream}:snapshot``, beside the stream id and number it covers, and the stream is trimmed up to
that id (with replicas, no further than the slowest of them, above). A restart
loads the snapshot and replays only what came after it. A crash between saving and trimming
only leaves entries the replay skips. A snapshot costs O(waiting tickets) on the event loop,
so it also waits until the entries since the last are at least the waiting tickets over
:data:`SNAPSHOT_TICKETS_PER_ENTRY`: amortized, at most two tickets saved per entry however
long the queues grow (a fixed period alone would cost a number of tickets per entry that grows
with the line), and a restart replays at most half as many entries as
tickets wait -- of the order of what loading the snapshot costs. A line that only grows is
snapshotted at 10,000, 20,000, 40,000... entries; a desk whose lines drain keeps its log (and
Redis's memory) below about 10,000 entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

import msgpack
import redis.asyncio as aioredis

from surgedesk.adapters.redis.client import run_script, text
from surgedesk.engine.dispatcher import DispatcherCore, QueueStatus
from surgedesk.engine.errors import InvalidArgument, Recovering, SurgedeskError
from surgedesk.engine.events import (
    AgentPresenceChanged,
    AgentShiftEnded,
    ClockTicked,
    Command,
    ConversationEnded,
    Event,
    PolicyChanged,
    RosterPlanned,
    SkillConfigured,
    TicketHandedOver,
    TicketLeft,
    TicketQueued,
    TicketRequeued,
)
from surgedesk.engine.roster import PlannedShift
from surgedesk.engine.snapshot import core_from, snapshot_of

STREAM = "sd:dispatch"
_TYPES: dict[str, type] = {c.__name__: c for c in (AgentPresenceChanged, TicketQueued, TicketLeft,
                                                   ConversationEnded, ClockTicked,
                                                   SkillConfigured, PolicyChanged, TicketRequeued,
                                                   TicketHandedOver, AgentShiftEnded,
                                                   RosterPlanned)}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclass_fields(cls)) for cls in _TYPES.values()}


def encode(event: Event, now_s: float) -> bytes:
    # Routing events hold plain values (tuples, a skills mapping): a shallow copy is enough.
    fields = {name: getattr(event, name) for name in _FIELD_NAMES[type(event)]}
    if isinstance(event, AgentPresenceChanged):
        fields["skills"] = dict(event.skills)
    elif isinstance(event, RosterPlanned):
        fields["shifts"] = [[p.agent_id, dict(p.skills), p.capacity, p.start_s, p.end_s]
                            for p in event.shifts]
    return msgpack.packb({"type": type(event).__name__, "now_s": now_s, "f": fields},
                         use_bin_type=True)


def decode(payload: bytes) -> tuple[Event, float]:
    data = msgpack.unpackb(payload, raw=False)
    try:
        cls = _TYPES[data["type"]]
    except KeyError:
        raise InvalidArgument("event.type", f"unknown routing event {data.get('type')!r}") from None
    fields = data["f"]
    if cls is PolicyChanged:  # msgpack turns tuples into lists
        fields["relaxation"] = tuple(tuple(step) for step in fields["relaxation"])
    elif cls is RosterPlanned:
        fields["shifts"] = tuple(PlannedShift(*row) for row in fields["shifts"])
    return cls(**fields), float(data["now_s"])


GAP_WAIT_S = 0.005  # an entry handed over early waits this long for its predecessors
FOLLOW_LINGER_S = 0.002  # a replica's reader waits this long after a short read
SNAPSHOT_TICKETS_PER_ENTRY = 2  # a snapshot is due once it saves at most 2 tickets an entry
_UNCLAIMED_S = 2.0  # assignments of an entry no caller came for go to the next caller after this
REPLICA_BEAT_S = 1.0  # a replica records its place in the log this often
REPLICA_STALE_S = 30.0  # a replica silent this long no longer holds the log back

# A snapshot, stored only if newer than the stored one; then the log trimmed up to the oldest of
# the stored snapshot and the live replicas' places (replicas silent too long are forgotten).
_SNAPSHOT = """
-- KEYS: stream, snapshot, snapshot's place (hash), replicas (hash)
-- ARGV: seq, cursor, snapshot document, now (wall s), stale after (s)
local stored = tonumber(redis.call('HGET', KEYS[3], 'seq') or '-1')
if tonumber(ARGV[1]) > stored then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('HSET', KEYS[3], 'seq', ARGV[1], 'cursor', ARGV[2])
  stored = tonumber(ARGV[1])
end
local trim_seq, trim_cursor = stored, redis.call('HGET', KEYS[3], 'cursor')
local replicas = redis.call('HGETALL', KEYS[4])
for i = 1, #replicas, 2 do
  local seq, cursor, at = string.match(replicas[i + 1], '^(%d+) (%S+) (%S+)$')
  if seq == nil or tonumber(ARGV[4]) - tonumber(at) > tonumber(ARGV[5]) then
    redis.call('HDEL', KEYS[4], replicas[i])
  elseif tonumber(seq) < trim_seq then
    trim_seq, trim_cursor = tonumber(seq), cursor
  end
end
if trim_seq > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', trim_cursor)
end
return trim_seq
"""

# The dispatcher's own append: its events, numbered, then every entry of other writers it has
# not applied yet (those numbered between the last it applied and its first).
_APPEND = """
-- KEYS: stream, its counter. ARGV: last applied entry id ('' for none), its number, events...
local k = #ARGV - 2
local first = redis.call('INCRBY', KEYS[2], k) - k + 1
local ids = {}
for i = 1, k do
  ids[i] = redis.call('XADD', KEYS[1], '*', 'n', first + i - 1, 'e', ARGV[2 + i])
end
local missed = {}
local gap = first - 1 - tonumber(ARGV[2])
if gap > 0 then
  local from = '-'
  if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
  missed = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', gap)
end
return {first, ids, missed}
"""


def seq_key(stream: str = STREAM) -> str:
    """The counter that numbers the entries of ``stream``."""
    return f"{stream}:seq"


@dataclass(frozen=True, slots=True)
class RoutingEntry:
    """An entry another writer added to the routing stream: its number and id, and what it
    says (the event and the ``now_s`` it was journaled with)."""

    seq: int
    cursor: str
    event: Event
    now_s: float

    @property
    def ticket_id(self) -> str:
        """The ticket the entry is about ("" for one about agents or policy)."""
        return str(getattr(self.event, "ticket_id", ""))


class DispatcherService:
    """A journaled :class:`DispatcherCore`."""

    def __init__(self, client: aioredis.Redis, core_factory: Callable[[], DispatcherCore],
                 clock: Callable[[], float], *, stream: str = STREAM, batch_max: int = 500,
                 snapshot_every: int = 10_000, replica: bool = False,
                 wall: Callable[[], float] = time.time) -> None:
        self._redis: Any = client
        self._core_factory = core_factory
        self._clock = clock
        self.stream = stream
        self.batch_max = batch_max
        self.core = core_factory()
        self._script = client.register_script(_APPEND)
        self._snapshot_script = client.register_script(_SNAPSHOT)
        self._wall = wall
        self._pending: list[tuple[Event, asyncio.Future[list[Command]]]] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._last_now_s = -math.inf
        self.snapshot_every = snapshot_every
        self.replayed = 0
        self.batches = 0
        self.snapshots = 0
        self.gap_reads = 0  # gaps no writer's caller filled in time: read from Redis
        self._last_id = "-"
        self._applied = 0  # the number of the last entry applied
        self._since_snapshot = 0
        # Entries handed over ahead of their predecessors, and their callers: number -> ...
        self._early: dict[int, tuple[RoutingEntry, asyncio.Future[list[Command]]]] = {}
        # Outcomes of entries applied before their caller came (a read filled a gap).
        self._unclaimed: dict[int, tuple[list[Command], float]] = {}
        self._sweep_armed = False
        self._orphans: list[Command] = []  # assignments of events that landed unanswered
        # One of several gateways' copies of the dispatcher (see the module's docstring).
        self.replica = replica
        self._reader: asyncio.Task[None] | None = None
        self.followed = 0  # entries applied as the log's reader found them (replica)
        self.replica_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._beat_at = -math.inf
        self.broken = ""  # why this replica can no longer follow the log ("" while it can)

    @property
    def snapshot_key(self) -> str:
        return f"{self.stream}:snapshot"

    @property
    def snapshot_at_key(self) -> str:
        """The stored snapshot's entry number and stream id (hash ``seq``, ``cursor``)."""
        return f"{self.stream}:snapshot:at"

    @property
    def replicas_key(self) -> str:
        """Where each replica is in the log: replica id -> ``"seq cursor wall_s"``."""
        return f"{self.stream}:replicas"

    def waiting_status(self, ticket_id: str, now_s: float) -> QueueStatus | None:
        """The ticket's place in line and wait estimate; None if it is not waiting (it was
        assigned)."""
        core = self.core
        return core.queue_status(ticket_id, now_s) if core.is_waiting(ticket_id) else None

    @property
    def applied(self) -> int:
        """The number of the last routing entry applied."""
        return self._applied

    async def start(self) -> DispatcherService:
        """Rebuild the core from the journal, then start taking events."""
        self.core = self._core_factory()
        if self.replica:  # place 0 while loading: no trim passes what this will replay
            await self._redis.hset(self.replicas_key, self.replica_id,
                                   f"0 0-0 {self._wall()!r}")
        last = "-"
        saved = await self._redis.get(self.snapshot_key)
        if saved is not None:
            data = msgpack.unpackb(saved, raw=False)
            self.core = core_from(data["core"])
            self._last_now_s = float(data["now_s"])
            last = data["cursor"]
            self._applied = int(data["seq"])
        self._last_id = last
        await self._catch_up()
        if self.replica:
            await self._beat()
        loop = asyncio.get_running_loop()
        self._worker = loop.create_task(self._run())
        if self.replica:
            self._reader = loop.create_task(self._follow())
        return self

    async def stop(self) -> None:
        for task in (self._worker, self._reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._worker = self._reader = None
        if self.replica:
            with contextlib.suppress(Exception):  # Redis away: forgotten once stale
                await self._redis.hdel(self.replicas_key, self.replica_id)
        stopped = SurgedeskError("dispatcher stopped")
        for future in [f for _, f in self._pending] + [f for _, f in self._early.values()]:
            if not future.done():
                future.set_exception(stopped)
        self._pending.clear()
        self._early.clear()

    async def submit(self, event: Event) -> list[Command]:
        """Journal ``event``, apply it, and return the assignments it caused."""
        if self._worker is None:
            raise SurgedeskError("dispatcher not started")
        if self.broken:
            raise Recovering(self.broken)
        future: asyncio.Future[list[Command]] = self._worker.get_loop().create_future()
        self._pending.append((event, future))
        self._wake.set()
        return await future

    async def landed(self, entry: RoutingEntry) -> list[Command]:
        """Apply an entry another writer journaled (a new ticket's ``TicketQueued``) and return
        the assignments it caused. The next entry in order is applied at once, without Redis:
        O(1) besides the core's own work. One ahead of a gap waits for it (at most about
        :data:`GAP_WAIT_S`, then the gap is read). One applied already (a read filled a gap,
        or a replay after a restart) answers what it caused if that is still known."""
        if self._worker is None:
            raise SurgedeskError("dispatcher not started")
        if self.broken:
            raise Recovering(self.broken)
        if entry.seq <= self._applied:
            out, _ = self._unclaimed.pop(entry.seq, ([], 0.0))
            return self._with_orphans(out)
        if entry.seq == self._applied + 1:
            out = self._apply_entry(entry.seq, entry.cursor, entry.event, entry.now_s)
            self._apply_early()
            return self._with_orphans(out)
        if entry.seq in self._early:  # handed over twice (a retried call): one outcome
            return self._with_orphans(await asyncio.shield(self._early[entry.seq][1]))
        future: asyncio.Future[list[Command]] = self._worker.get_loop().create_future()
        self._early[entry.seq] = (entry, future)
        self._wake.set()  # the worker reads the gap if no one fills it
        return self._with_orphans(await future)

    def _with_orphans(self, out: list[Command]) -> list[Command]:
        if self._orphans:
            out, self._orphans = [*self._orphans, *out], []
        return out

    def _apply_entry(self, seq: int, cursor: str, event: Event, now_s: float, *,
                     replaying: bool = False) -> list[Command]:
        """Apply the entry numbered ``seq`` (the next one); its refusal is raised live."""
        self._applied, self._last_id = seq, cursor
        self._since_snapshot += 1
        if self._snapshot_due():
            self._wake.set()
        return self._apply(event, now_s, replaying=replaying)

    def _apply_early(self) -> None:
        """Apply the entries that were waiting for the ones just applied."""
        while self._early:
            item = self._early.pop(self._applied + 1, None)
            if item is None:
                return
            entry, future = item
            self._settle(future, entry.seq, entry.cursor, entry.event, entry.now_s)

    def _settle(self, future: asyncio.Future[list[Command]] | None, seq: int, cursor: str,
                event: Event, now_s: float) -> None:
        try:
            out = self._apply_entry(seq, cursor, event, now_s)
        except SurgedeskError as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is None:
            if not out:
                return  # nothing to deliver: a caller coming for it gets [] all the same
            loop = asyncio.get_running_loop()
            self._unclaimed[seq] = (out, loop.time())
            if not self._sweep_armed:  # one timer for every outcome waiting, not one each
                self._sweep_armed = True
                loop.call_later(_UNCLAIMED_S * 1.1, self._sweep_due)
        elif not future.done():
            future.set_result(self._with_orphans(out))

    def _apply_read(self, rows: list[Any]) -> None:
        """Apply entries a script read from the stream (those after the last applied), settling
        the callers of any of them that were handed over early."""
        for cursor, flat in rows:
            seq, event, now_s = self._read_entry(dict(zip(flat[::2], flat[1::2], strict=True)))
            if seq <= self._applied:
                continue  # applied meanwhile (handed over while the read was under way)
            item = self._early.pop(seq, None)
            self._settle(item[1] if item else None, seq, text(cursor), event, now_s)
        self._apply_early()

    def _read_entry(self, fields: dict[bytes, bytes]) -> tuple[int, Event, float]:
        """An entry's number, event and time."""
        return (int(fields[b"n"]), *decode(fields[b"e"]))

    async def _catch_up(self, *, collect: bool = False) -> None:
        """Apply the stream's entries after the last applied id, as a replay does (with
        ``collect``, their assignments go to the next caller). O(entries)."""
        last = self._last_id
        while True:
            start = last if last == "-" else f"({last}"  # exclusive: after the last applied
            rows = await self._redis.xrange(self.stream, min=start, count=5000)
            if not rows:
                break
            for cursor, fields in rows:
                seq, event, now_s = self._read_entry(fields)
                out = self._apply_entry(seq, text(cursor), event, now_s, replaying=True)
                if collect:
                    self._orphans.extend(out)
                self.replayed += 1
            last = self._last_id

    @staticmethod
    def _fail(batch: list[tuple[Event, asyncio.Future[list[Command]]]],
              exc: BaseException) -> None:
        error = Recovering(f"routing journal unavailable ({type(exc).__name__}); retry")
        for _, future in batch:
            if not future.done():
                future.set_exception(error)

    async def _append(self, batch: list[tuple[Event, asyncio.Future[list[Command]]]]) -> None:
        """Journal ``batch`` in one script call, apply what others journaled before it, then
        the batch. O(batch + entries missed)."""
        now_s = max(self._last_now_s, float(self._clock()))
        args = [self._last_id if self._last_id != "-" else "", self._applied,
                *[encode(event, now_s) for event, _ in batch]]
        try:
            first, ids, missed = await run_script(
                self._redis, self._script, [self.stream, seq_key(self.stream)], args)
        except Exception as exc:  # noqa: BLE001 - Redis down: nothing applied here
            self._fail(batch, exc)
            raise
        self.batches += 1 if batch else 0
        self._apply_read(missed)
        if self._applied >= int(first) and self.replica:
            # The log's reader applied some of this batch already: their outcomes wait in
            # the unclaimed ones; the rest of the batch is applied as usual.
            done = self._applied - int(first) + 1
            for offset, (_event, future) in enumerate(batch[:done]):
                out, _ = self._unclaimed.pop(int(first) + offset, ([], 0.0))
                if not future.done():
                    future.set_result(self._with_orphans(out))
            batch, first = batch[done:], self._applied + 1
            ids = ids[done:]
        if self._applied != int(first) - 1:
            if self.replica:  # trimmed before this replica read them
                self._break(f"routing log entries {self._applied + 1}..{int(first) - 1} were "
                            f"trimmed before this copy of the dispatcher read them")
                self._fail(batch, Recovering(self.broken))
                raise Recovering(self.broken)
            # Entries missing between (the stream was changed behind the dispatcher's back):
            # apply the stream as it is, as a replay would, and let the callers retry.
            await self._catch_up(collect=True)
            error = SurgedeskError(f"routing stream {self.stream}: entries up to {first} were "
                                   f"missing; applied the stream as it is")
            self._fail(batch, error)
            raise error
        for offset, (event, future) in enumerate(batch):
            self._settle(future, int(first) + offset, text(ids[offset]), event, now_s)
        self._apply_early()  # entries handed over while this batch was under way

    async def _follow(self) -> None:
        """A replica's reader of the log: entries other gateways journaled are applied as they
        arrive (``XREAD BLOCK``), so that this copy stays current and an entry handed over by
        this gateway rarely waits for a gap. O(entries)."""
        task = asyncio.current_task()
        while True:
            try:
                start = self._last_id if self._last_id != "-" else "0-0"
                reply = await self._redis.xread({self.stream: start}, count=1000, block=100)
            except Exception:  # noqa: BLE001 - Redis away: the next read tries again
                reply = None
                if not (task is not None and task.cancelling()):
                    await asyncio.sleep(0.1)
            if task is not None and task.cancelling():
                # redis-py may end a read normally (or with a connection error) after the task
                # was cancelled during it; the cancellation still stands.
                raise asyncio.CancelledError
            if reply:
                rows = reply[0][1]
                first = int(rows[0][1][b"n"])
                if first > self._applied + 1:  # trimmed before this replica read them
                    self._break(f"routing log entries {self._applied + 1}..{first - 1} were "
                                f"trimmed before this copy of the dispatcher read them")
                    return
                before = self._applied
                self._apply_read([(cursor, [x for kv in fields.items() for x in kv])
                                  for cursor, fields in rows])
                self.followed += self._applied - before
                if self._unclaimed:
                    self._wake.set()  # the worker sweeps what no caller came for
                if len(rows) < 1000:
                    # Linger: the next read then carries what arrived meanwhile (a read per
                    # entry under load costs both sides more than the entries themselves).
                    await asyncio.sleep(FOLLOW_LINGER_S)
            if self._wall() - self._beat_at >= REPLICA_BEAT_S:
                with contextlib.suppress(Exception):  # Redis away: the next turn tries again
                    await self._beat()

    async def _beat(self) -> None:
        """Record where this replica is in the log. O(1)."""
        now = self._wall()
        cursor = self._last_id if self._last_id != "-" else "0-0"
        await self._redis.hset(self.replicas_key, self.replica_id,
                               f"{self._applied} {cursor} {now!r}")
        self._beat_at = now

    def _break(self, reason: str) -> None:
        """This replica can no longer follow the log: it refuses calls from now on (its
        gateway's readiness sees :attr:`broken`, and the gateway starts again)."""
        self.broken = reason
        error = Recovering(reason)
        for future in [f for _, f in self._pending] + [f for _, f in self._early.values()]:
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._early.clear()

    def _sweep_due(self) -> None:
        self._sweep_armed = False
        self._wake.set()  # the worker sweeps; the next outcome stored arms the timer again
        if self._unclaimed:
            self._sweep_armed = True
            asyncio.get_running_loop().call_later(_UNCLAIMED_S * 1.1, self._sweep_due)

    def _sweep_unclaimed(self, now: float) -> None:
        """Outcomes no caller came for (its caller was cancelled, or its gateway died) go to
        the next caller, so their assignments are delivered all the same."""
        for seq in [s for s, (_, at) in self._unclaimed.items() if now - at > _UNCLAIMED_S]:
            out = self._unclaimed.pop(seq)[0]
            if not self.replica:  # a replica's unclaimed entries are another gateway's to deliver
                self._orphans.extend(out)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._unclaimed:
                self._sweep_unclaimed(loop.time())
            if self._early and not self._pending:
                await asyncio.sleep(GAP_WAIT_S)  # its predecessors are likely under way
                if self._early and not self._pending:
                    try:
                        await self._append([])
                        self.gap_reads += 1
                    except Exception:  # noqa: BLE001 - Redis away: read again shortly
                        await asyncio.sleep(0.05)
                        self._wake.set()
                        continue
            while self._pending:
                batch = self._pending[: self.batch_max]
                del self._pending[: len(batch)]
                with contextlib.suppress(Exception):  # answered with the error; next batch
                    await self._append(batch)
            if self._early:
                self._wake.set()  # still waiting for a gap
            if self._snapshot_due():
                with contextlib.suppress(Exception):  # Redis away: the next batch retries
                    await self.snapshot()

    def _snapshot_due(self) -> bool:
        """Whether enough entries have been applied since the last snapshot to pay for the
        next one. O(1)."""
        since = self._since_snapshot
        return since >= self.snapshot_every and (
            since * SNAPSHOT_TICKETS_PER_ENTRY >= self.core.waiting_count())

    async def snapshot(self) -> int:
        """Save the core with the stream id it covers (unless a newer snapshot is stored),
        then trim the log up to the oldest of the stored snapshot and the live replicas'
        places. Returns the number of the first entry the log still needs (0: none trimmed).
        O(waiting tickets) to save, plus the entries trimmed."""
        cursor = self._last_id
        if cursor == "-":
            return 0
        if self.replica:
            await self._beat()  # where this copy is, as of now
        document = msgpack.packb({"cursor": cursor, "seq": self._applied,
                                  "now_s": self._last_now_s, "core": snapshot_of(self.core)},
                                 use_bin_type=True)
        kept = await run_script(
            self._redis, self._snapshot_script,
            [self.stream, self.snapshot_key, self.snapshot_at_key, self.replicas_key],
            [self._applied, cursor, document, repr(self._wall()), REPLICA_STALE_S])
        self._since_snapshot = 0
        self.snapshots += 1
        return int(kept)

    def _apply(self, event: Event, now_s: float, *, replaying: bool = False) -> list[Command]:
        # Writers' clocks differ a little (the tickets' and the dispatcher's): an entry is
        # applied at the latest time seen so far, live and in a replay alike.
        now_s = max(self._last_now_s, now_s)
        self._last_now_s = now_s
        try:
            return self.core.handle(event, now_s)
        except SurgedeskError:
            if replaying:  # a refusal is part of the history
                return []
            raise
