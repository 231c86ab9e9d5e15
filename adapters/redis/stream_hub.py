"""The gateway's one reader for every watch: the journal's feed, fanned out to subscribers.

Who runs this: the gateway, on its asyncio loop. Each ``WatchTicket`` and ``WatchAssignments``
holds a :class:`Subscription` to one stream (a ticket's journal, an agent's watch stream). The
journal writes each event, in the same atomic step, to that event's streams and to one feed
stream (:data:`surgedesk.adapters.redis.journal.FEED_KEY`) naming those streams and the event's
cursor in each. :class:`StreamHub` reads the feed with one ``XREAD BLOCK`` at a time and hands each
entry to the subscribers of the streams it names.

Why: a blocking ``XREAD`` per watcher holds a Redis connection each and costs a round trip per
event and per idle second; with a few hundred agents at a surge's peak those reads were a
sixth of the gateway's CPU. (Reading all watched streams in one ``XREAD`` instead costs
O(watched streams) per read, which was worse.) The feed costs one read per batch of events,
whatever the number of watchers.

Order and completeness: a subscriber registers first and then reads its own stream after its
cursor (``XRANGE``), once; entries at or before the last one it returned are dropped after
that. An event appended before that read is in it; one appended after is read from the feed
after the subscriber registered, so it reaches the subscriber's queue. Nothing is lost or
repeated, and each stream's order is kept (a stream's entries enter the feed in their order).
The feed keeps about two minutes (:data:`~surgedesk.adapters.redis.journal.FEED_KEEP_MS`) and
numbers its entries; a reader that finds a number missing (it fell that far behind, or Redis lost
its data), or a Redis outage, ends every subscription with an error: the watch reports UNAVAILABLE
and the client resumes from its cursor. After an outage the reader reads on from where it was
(never from the feed's end, which would skip what a watch resumed meanwhile has not read).

Costs: a feed batch is O(entries x streams each names) for the reader; a subscription is O(1)
to join and leave, plus its own catch-up read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgpack

from surgedesk.adapters.redis.client import text
from surgedesk.adapters.redis.journal import FEED_KEY, FEED_SEQ_KEY
from surgedesk.adapters.transient_errors import is_transient
from surgedesk.engine.errors import InvalidArgument, Overloaded, Recovering

log = logging.getLogger(__name__)

Row = tuple[str, dict[bytes, bytes]]  # (entry id, fields)

MAX_PENDING_BATCHES = 2_000  # a watcher this far behind is ended; it resumes from its cursor


def stream_id(cursor: str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``, or ``ms``, or ``""``/``"0"`` for the start) as a pair
    that orders like the stream; anything else is refused naming the ``cursor`` field."""
    if not cursor:
        return (0, 0)
    ms, _, seq = cursor.partition("-")
    if not ms.isdigit() or (seq and not seq.isdigit()) or len(cursor) > 41:
        raise InvalidArgument("cursor", "must be a cursor the stream gave (empty for the start)")
    return (int(ms), int(seq or 0))


class Subscription:
    """A watcher's place on one stream: batches of rows after its cursor, in order."""

    def __init__(self, hub: StreamHub, key: str, cursor: str) -> None:
        self.hub, self.key = hub, key
        self.last = stream_id(cursor)
        self._queue: asyncio.Queue[list[Row] | BaseException] = asyncio.Queue()
        self._caught_up = False

    def _put(self, rows: list[Row] | BaseException) -> bool:
        """Hand over a batch; False (and the subscription ended) if the watcher is too far
        behind to keep buffering for it."""
        if self._queue.qsize() >= MAX_PENDING_BATCHES and not isinstance(rows, BaseException):
            self._queue.put_nowait(Overloaded(
                f"watch of {self.key} fell {MAX_PENDING_BATCHES} batches behind; "
                "resume from the last cursor"))
            return False
        self._queue.put_nowait(rows)
        return True

    async def next(self, timeout_s: float | None = None) -> list[Row]:
        """The next rows after the last ones returned; ``[]`` if ``timeout_s`` passed first.
        Raises what ended the hub's reading (Redis away): the subscription is then over."""
        if not self._caught_up:
            self._caught_up = True
            rows = self._fresh(await self.hub.range_after(self.key, self.last))
            if rows:
                return rows
        while True:
            if timeout_s is None:
                item = await self._queue.get()
            else:
                try:
                    async with asyncio.timeout(timeout_s):
                        item = await self._queue.get()
                except TimeoutError:
                    return []
            if isinstance(item, BaseException):
                raise item
            rows = self._fresh(item)
            if rows:
                return rows

    def _fresh(self, rows: list[Row]) -> list[Row]:
        out = [r for r in rows if stream_id(r[0]) > self.last]
        if out:
            self.last = stream_id(out[-1][0])
        return out

    def close(self) -> None:
        self.hub._leave(self)


class StreamHub:
    def __init__(self, client: Any, *, block_ms: int = 1000, count: int = 1000,
                 linger_s: float = 0.008) -> None:
        self._redis = client
        self.block_ms, self.count = block_ms, count
        # After a partial batch, wait this long for more before reading again: under load the
        # feed is read a few hundred times a second instead of once per event.
        self.linger_s = linger_s
        self._subs: dict[str, set[Subscription]] = {}
        self._position = "0-0"  # the last feed entry handed out
        self._number = 0  # and its number
        self._started: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # feed reads issued (tests and benchmarks look)

    async def subscribe(self, key: str, cursor: str = "") -> Subscription:
        """Follow stream ``key`` from after ``cursor``. O(1) once the reader runs."""
        sub = Subscription(self, key, cursor)  # a bad cursor is refused before anything
        await self._start()
        self._subs.setdefault(key, set()).add(sub)
        return sub

    async def _start(self) -> None:
        """Start reading the feed from its current end (once)."""
        if self._task is not None and not self._task.done() and self._started is not None:
            await asyncio.shield(self._started)
            return
        self._started = asyncio.get_running_loop().create_future()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="stream-hub")
        await asyncio.shield(self._started)

    def _leave(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.key]

    async def range_after(self, key: str, after: tuple[int, int]) -> list[Row]:
        """Every row of ``key`` after ``after`` (a subscriber's catch-up). O(rows)."""
        out: list[Row] = []
        start = f"({after[0]}-{after[1]}" if after != (0, 0) else "-"
        while True:
            rows = await self._redis.xrange(key, min=start, count=self.count)
            out += [(text(i), f) for i, f in rows]
            if len(rows) < self.count:
                return out
            start = f"({out[-1][0]}"

    async def _feed_end(self) -> None:
        """Start after the feed's last entry: its id and number, read atomically."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.xrevrange(FEED_KEY, count=1)
        pipe.get(FEED_SEQ_KEY)
        last, number = await pipe.execute()
        self._position = text(last[0][0]) if last else "0-0"
        self._number = int(number or 0)

    async def _run(self) -> None:
        assert self._started is not None
        try:
            await self._feed_end()
        except Exception as exc:  # noqa: BLE001 - the subscriber that started us sees it
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        while True:
            try:
                reply = await self._redis.xread({FEED_KEY: self._position}, count=self.count,
                                                block=self.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every watcher
                if not is_transient(exc):
                    log.exception("stream hub read failed")
                self._fail_all(exc)
                await asyncio.sleep(0.1)
                # Read on from where we were, never from the feed's end: a watch resumed
                # meanwhile has read its stream up to now, and what is written after that
                # read must still reach it. (If Redis lost the feed, the numbering says so.)
                continue
            finally:
                self.reads += 1
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # redis-py can end a read normally after the task was cancelled during it (it
                # closes the connection under the read); the cancellation still stands.
                raise asyncio.CancelledError
            rows = reply[0][1] if reply else []
            if not rows:
                continue
            if int(rows[0][1][b"n"]) != self._number + 1:
                # Entries were trimmed unread (or Redis lost its data): watchers start over.
                self._fail_all(Recovering("the watch fell behind the journal's feed; "
                                          "resume from the last cursor"))
            self._position = text(rows[-1][0])
            self._number = int(rows[-1][1][b"n"])
            if self._subs:
                self._fan_out(rows)
            if len(rows) < self.count and self.linger_s > 0:
                await asyncio.sleep(self.linger_s)

    def _fan_out(self, rows: list[Any]) -> None:
        batches: dict[str, list[Row]] = {}
        subs = self._subs
        for _feed_id, f in rows:
            payload, ticket_stream, cursor = f[b"e"], text(f[b"s"]), text(f[b"c"])
            if ticket_stream in subs:
                batches.setdefault(ticket_stream, []).append((cursor, {b"e": payload}))
            copies = msgpack.unpackb(f[b"m"])  # [agent stream, its cursor, ...]
            for j in range(0, len(copies), 2):
                key = text(copies[j])
                if key in subs:
                    batches.setdefault(key, []).append(
                        (text(copies[j + 1]), {b"t": f[b"t"], b"c": f[b"c"], b"e": payload}))
        for key, batch in batches.items():
            for sub in list(subs.get(key, ())):
                if not sub._put(batch):
                    self._leave(sub)

    def _fail_all(self, exc: BaseException) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub._put(exc)
        self._subs.clear()

    def end_all(self, exc: BaseException) -> None:
        """End every subscription now with ``exc`` (a gateway draining ends its watches, so
        that clients resume them elsewhere from their cursors). O(subscriptions)."""
        self._fail_all(exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
