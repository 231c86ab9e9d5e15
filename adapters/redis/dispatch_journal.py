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
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import msgpack
import redis.asyncio as aioredis

from engine.dispatcher import DispatcherCore
from engine.errors import InvalidArgument, SurgedeskError
from engine.events import (
    AgentPresenceChanged,
    AssignTicket,
    ClockTicked,
    ConversationEnded,
    Event,
    TicketLeft,
    TicketQueued,
)

STREAM = "sd:dispatch"
_TYPES: dict[str, type] = {c.__name__: c for c in (AgentPresenceChanged, TicketQueued, TicketLeft,
                                                   ConversationEnded, ClockTicked)}


def encode(event: Event, now_s: float) -> bytes:
    fields = asdict(event)
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
    return cls(**data["f"]), float(data["now_s"])


class DispatcherService:
    """A journaled :class:`DispatcherCore`."""

    def __init__(self, client: aioredis.Redis, core_factory: Callable[[], DispatcherCore],
                 clock: Callable[[], float], *, stream: str = STREAM, batch_max: int = 500) -> None:
        self._redis: Any = client
        self._core_factory = core_factory
        self._clock = clock
        self.stream = stream
        self.batch_max = batch_max
        self.core = core_factory()
        self._pending: list[tuple[Event, asyncio.Future[list[AssignTicket]]]] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._last_now_s = -math.inf
        self.replayed = 0
        self.batches = 0

    async def start(self) -> DispatcherService:
        """Rebuild the core from the journal, then start taking events."""
        self.core = self._core_factory()
        last = "-"
        while True:
            rows = await self._redis.xrange(self.stream, min=last, count=5000)
            if last != "-":
                rows = rows[1:]  # xrange's min is inclusive
            if not rows:
                break
            for _cursor, fields in rows:
                event, now_s = decode(fields[b"e"])
                self._apply(event, now_s)
                self.replayed += 1
            last = rows[-1][0].decode()
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

    async def submit(self, event: Event) -> list[AssignTicket]:
        """Journal ``event``, apply it, and return the assignments it caused."""
        if self._worker is None:
            raise SurgedeskError("dispatcher not started")
        future: asyncio.Future[list[AssignTicket]] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.batch_max]
                del self._pending[: len(batch)]
                now_s = max(self._last_now_s, float(self._clock()))
                pipe = self._redis.pipeline(transaction=False)
                for event, _ in batch:
                    pipe.xadd(self.stream, {"e": encode(event, now_s)})
                try:
                    await pipe.execute()
                except Exception as exc:  # Redis down: nothing was applied, callers learn why
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                for event, future in batch:
                    try:
                        out = self._apply(event, now_s)
                    except SurgedeskError as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(out)

    def _apply(self, event: Event, now_s: float) -> list[AssignTicket]:
        self._last_now_s = max(self._last_now_s, now_s)
        try:
            return self.core.handle(event, now_s)
        except SurgedeskError:
            if not self._worker:  # replaying: a refusal is part of the history
                return []
            raise
