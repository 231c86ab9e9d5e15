"""The dispatcher's journal: routing events in one Redis stream, replayed to rebuild the core.

Who runs this: the dispatcher host (one per routing domain), on its asyncio loop.

:class:`DispatcherService` owns a :class:`~engine.dispatcher.DispatcherCore`. Every event is
appended to the stream ``sd:dispatch`` (msgpack, with the ``now_s`` it is applied at) *before*
the core applies it, and events are applied in exactly the stream's order: concurrent callers
are coalesced into micro-batches by one worker (one round trip to Redis for up to
``batch_max`` events). The core is deterministic, so on start :meth:`DispatcherService.start`
replays the stream and gets back the same lines in the same order, the same agent loads and the
same measured rates -- a killed dispatcher loses nothing. Assignments made during replay were
delivered (or are re-delivered idempotently by the shard hosts' reconciliation) and are not
returned again.

An event the core refuses was journaled all the same; it is refused again, identically, on
replay, and changes nothing either time.

Redis failing under a batch (killed, restarting) is answered with :class:`Recovering` and the
core is left as it was. The append may nevertheless have landed (the reply was lost), so before
the next batch the service reads the stream after the last id it applied and applies whatever
landed, as a replay would: memory never drifts from the journal. Assignments those events cause
are handed to the next caller with its own (the desk delivers every assignment it gets back).

Snapshots keep restarts short: every ``snapshot_every`` events the core is saved (pickled: it
is plain Python data, and Redis is the engine's own trusted store) under ``{stream}:snapshot``
with the stream id it covers, and the stream is trimmed up to that id. A restart loads the
snapshot and replays only what came after it. A crash between saving and trimming only leaves
entries the replay skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import pickle
from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from typing import Any

import msgpack
import redis.asyncio as aioredis

from engine.dispatcher import DispatcherCore
from engine.errors import InvalidArgument, Recovering, SurgedeskError
from engine.events import (
    AgentPresenceChanged,
    AgentShiftEnded,
    ClockTicked,
    Command,
    ConversationEnded,
    Event,
    PolicyChanged,
    SkillConfigured,
    TicketHandedOver,
    TicketLeft,
    TicketQueued,
    TicketRequeued,
)

STREAM = "sd:dispatch"
_TYPES: dict[str, type] = {c.__name__: c for c in (AgentPresenceChanged, TicketQueued, TicketLeft,
                                                   ConversationEnded, ClockTicked,
                                                   SkillConfigured, PolicyChanged, TicketRequeued,
                                                   TicketHandedOver, AgentShiftEnded)}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclass_fields(cls)) for cls in _TYPES.values()}


def encode(event: Event, now_s: float) -> bytes:
    # Routing events hold plain values (tuples, a skills mapping): a shallow copy is enough.
    fields = {name: getattr(event, name) for name in _FIELD_NAMES[type(event)]}
    if isinstance(event, AgentPresenceChanged):
        fields["skills"] = dict(event.skills)
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
    return cls(**fields), float(data["now_s"])


class DispatcherService:
    """A journaled :class:`DispatcherCore`."""

    def __init__(self, client: aioredis.Redis, core_factory: Callable[[], DispatcherCore],
                 clock: Callable[[], float], *, stream: str = STREAM, batch_max: int = 500,
                 snapshot_every: int = 50_000) -> None:
        self._redis: Any = client
        self._core_factory = core_factory
        self._clock = clock
        self.stream = stream
        self.batch_max = batch_max
        self.core = core_factory()
        self._pending: list[tuple[Event, asyncio.Future[list[Command]]]] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._last_now_s = -math.inf
        self.snapshot_every = snapshot_every
        self.replayed = 0
        self.batches = 0
        self.snapshots = 0
        self._last_id = "-"
        self._since_snapshot = 0
        self._unsure = False  # an append failed: it may have landed all the same
        self._orphans: list[Command] = []  # assignments of events that landed unanswered
        self.resyncs = 0

    @property
    def snapshot_key(self) -> str:
        return f"{self.stream}:snapshot"

    async def start(self) -> DispatcherService:
        """Rebuild the core from the journal, then start taking events."""
        self.core = self._core_factory()
        last = "-"
        saved = await self._redis.get(self.snapshot_key)
        if saved is not None:
            data = msgpack.unpackb(saved, raw=False)
            self.core = pickle.loads(data["core"])
            self._last_now_s = float(data["now_s"])
            last = data["cursor"]
        self._last_id = last
        await self._catch_up()
        self._worker = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        for _, future in self._pending:
            if not future.done():
                future.set_exception(SurgedeskError("dispatcher stopped"))
        self._pending.clear()

    async def submit(self, event: Event) -> list[Command]:
        """Journal ``event``, apply it, and return the assignments it caused."""
        if self._worker is None:
            raise SurgedeskError("dispatcher not started")
        future: asyncio.Future[list[Command]] = self._worker.get_loop().create_future()
        self._pending.append((event, future))
        self._wake.set()
        return await future

    async def _catch_up(self, *, collect: bool = False) -> None:
        """Apply the stream's entries after the last applied id, as a replay does. O(entries)."""
        last = self._last_id
        while True:
            start = last if last == "-" else f"({last}"  # exclusive: after the last applied
            rows = await self._redis.xrange(self.stream, min=start, count=5000)
            if not rows:
                break
            for _cursor, fields in rows:
                event, now_s = decode(fields[b"e"])
                out = self._apply(event, now_s, replaying=True)
                if collect:
                    self._orphans.extend(out)
                self.replayed += 1
            last = rows[-1][0].decode()
            self._last_id = last

    @staticmethod
    def _fail(batch: list[tuple[Event, asyncio.Future[list[Command]]]],
              exc: BaseException) -> None:
        error = Recovering(f"routing journal unavailable ({type(exc).__name__}); retry")
        for _, future in batch:
            if not future.done():
                future.set_exception(error)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.batch_max]
                del self._pending[: len(batch)]
                if self._unsure:
                    try:
                        await self._catch_up(collect=True)
                    except Exception as exc:  # noqa: BLE001 - still down: answer, retry later
                        self._fail(batch, exc)
                        await asyncio.sleep(0.05)
                        continue
                    self._unsure = False
                    self.resyncs += 1
                now_s = max(self._last_now_s, float(self._clock()))
                pipe = self._redis.pipeline(transaction=False)
                for event, _ in batch:
                    pipe.xadd(self.stream, {"e": encode(event, now_s)})
                try:
                    ids = await pipe.execute()
                except Exception as exc:  # noqa: BLE001 - Redis down: nothing applied here
                    self._unsure = True
                    self._fail(batch, exc)
                    continue
                self.batches += 1
                last = ids[-1]
                self._last_id = last.decode() if isinstance(last, bytes) else str(last)
                self._since_snapshot += len(batch)
                for event, future in batch:
                    try:
                        out = self._apply(event, now_s)
                    except SurgedeskError as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if self._orphans and not future.done():
                            out, self._orphans = [*self._orphans, *out], []
                        if not future.done():
                            future.set_result(out)
                if self._since_snapshot >= self.snapshot_every:
                    with contextlib.suppress(Exception):  # Redis away: the next batch retries
                        await self.snapshot()

    async def snapshot(self) -> None:
        """Save the core with the stream id it covers, then trim the stream up to it."""
        cursor = self._last_id
        if cursor == "-":
            return
        blob = pickle.dumps(self.core, protocol=pickle.HIGHEST_PROTOCOL)
        await self._redis.set(self.snapshot_key, msgpack.packb(
            {"cursor": cursor, "now_s": self._last_now_s, "core": blob}, use_bin_type=True))
        await self._redis.xtrim(self.stream, minid=cursor)
        self._since_snapshot = 0
        self.snapshots += 1

    def _apply(self, event: Event, now_s: float, *, replaying: bool = False) -> list[Command]:
        self._last_now_s = max(self._last_now_s, now_s)
        try:
            return self.core.handle(event, now_s)
        except SurgedeskError:
            if replaying:  # a refusal is part of the history
                return []
            raise
