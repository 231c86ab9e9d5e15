"""Following the routing log: its entries applied to a routing core in order as they arrive,
and what each batch decided journaled.

Who runs this: a dispatcher fed from the routing log alone (every writer appends to the log;
the dispatcher only reads it), on its asyncio loop; the routing-log benchmark.

The routing log is the stream ``sd:dispatch`` (:mod:`surgedesk.adapters.redis.dispatch_journal`):
entries numbered ``n`` from one counter in the same atomic step that adds them, so the stream's
order is the numbers' order. :class:`RoutingLogFollower` reads it with ``XREAD BLOCK`` after
the last entry it applied, up to ``batch_max`` entries a read, applies each through
:meth:`DispatcherCore.handle <surgedesk.engine.dispatcher.DispatcherCore.handle>` at the
entry's own time (never earlier than the last: writers' clocks differ a little), and appends
one entry per batch to the decisions stream ``sd:decisions``: field ``n`` (the number of the
batch's last entry) and ``d``, msgpack of one row per entry that decided something --
``[n, commands, status]`` with the assignments (``["AssignTicket", ticket, agent, skill,
waited_s, from_agent]`` or ``["ReturnTicket", ticket, agent, skill]``) and, for a ticket that
now waits, its place and estimate (``[position, ahead, p50_s, p90_s, agents_serving]``; the
waits ``inf`` while nobody serves the skill). A writer that wants the outcome of its entry
reads the decisions stream up to its number.

Costs: per batch, one read and one write to Redis; per entry, a msgpack decode and the core's
own O(log n) work (a queued ticket's status is one rank and one estimate). An entry the core
refuses is part of the history and decides nothing. A number missing from the sequence (the
log was trimmed unread) is counted in :attr:`RoutingLogFollower.gaps`; the entries are applied
in the order the log holds them.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from typing import Any

import msgpack

from surgedesk.adapters.redis.dispatch_journal import STREAM, decode
from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.errors import SurgedeskError
from surgedesk.engine.events import AssignTicket, TicketQueued
from surgedesk.engine.snapshot import command_row

DECISIONS = "sd:decisions"
DECISIONS_KEEP = 100_000  # batches of decisions kept (about trimmed, MAXLEN ~)
LAGS_KEPT = 100_000  # the latest entries' lags, for statistics


class RoutingLogFollower:
    """Applies the routing log to ``core`` as it grows; journals the decisions of each batch."""

    def __init__(self, client: Any, core: DispatcherCore, *, stream: str = STREAM,
                 decisions: str = DECISIONS, batch_max: int = 2000, block_ms: int = 50,
                 wall: Callable[[], float] = time.time) -> None:
        self._redis = client
        self.core = core
        self.stream, self.decisions = stream, decisions
        self.batch_max, self.block_ms = batch_max, block_ms
        self._wall = wall
        self.last_id = "0-0"
        self.applied = 0  # the number of the last entry applied
        self.entries = 0  # entries applied by this follower
        self.assignments = 0
        self.refused = 0
        self.gaps = 0
        self.batches = 0
        # per entry, the last ones: journaled -> its decision journaled
        self.lags_s: collections.deque[float] = collections.deque(maxlen=LAGS_KEPT)
        self._now_s = -math.inf

    async def step(self) -> int:
        """One read of up to ``batch_max`` entries (waiting up to ``block_ms`` for the first),
        applied and their decisions journaled. Returns the entries applied."""
        reply = await self._redis.xread({self.stream: self.last_id}, count=self.batch_max,
                                        block=self.block_ms)
        if not reply:
            return 0
        rows = reply[0][1]
        decided: list[list[Any]] = []
        journaled: list[float] = []
        core = self.core
        for _entry_id, fields in rows:
            seq = int(fields[b"n"])
            if seq != self.applied + 1:
                self.gaps += 1
            self.applied = seq
            event, at_s = decode(fields[b"e"])
            journaled.append(at_s)
            now_s = self._now_s = max(self._now_s, at_s)
            try:
                out = core.handle(event, now_s)
            except SurgedeskError:
                self.refused += 1
                continue
            status = None
            if isinstance(event, TicketQueued) and core.is_waiting(event.ticket_id):
                s = core.queue_status(event.ticket_id, now_s)
                est = s.estimate
                status = [est.position, est.ahead, est.p50_s, est.p90_s, s.agents_serving]
            if out or status is not None:
                self.assignments += sum(1 for c in out if isinstance(c, AssignTicket))
                decided.append([seq, [command_row(c) for c in out], status])
        self.last_id = rows[-1][0]
        self.entries += len(rows)
        await self._redis.xadd(self.decisions, {"n": self.applied,
                                                "d": msgpack.packb(decided, use_bin_type=True)},
                               maxlen=DECISIONS_KEEP, approximate=True)
        self.batches += 1
        done = self._wall()
        self.lags_s.extend(done - at for at in journaled)
        return len(rows)

    async def run_until_idle(self) -> int:
        """Apply the log until a read finds nothing new within ``block_ms``; the entries
        applied (a restarted dispatcher's catch-up). O(entries)."""
        total = 0
        while n := await self.step():
            total += n
        return total
