"""Rate limits and admission: how the gateway says "not now" instead of growing without bound.

* :class:`RateLimiter` -- token buckets per key (a token, a customer). A call over the limit
  gets RESOURCE_EXHAUSTED with the seconds until it would pass.
* :class:`Admission` -- at most ``max_inflight`` unary calls and ``max_streams`` open watch
  streams at once; the next one is shed at once with RESOURCE_EXHAUSTED. Once the gateway
  drains (it is shutting down), every new call is refused with UNAVAILABLE, which clients
  retry on another gateway. Every call the gateway
  admits makes a bounded number of Redis and actor calls, so this one bound also bounds the
  actor mailboxes and the batchers behind the gateway.
* :class:`Limits` -- the numbers, from the desk file's ``[limits]`` table; 0 switches one off.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from surgedesk.engine.errors import Draining, InvalidArgument, Overloaded


@dataclass(frozen=True)
class Limits:
    """Per second rates and bursts; ``0`` means no limit."""

    per_customer_per_s: float = 5.0       # a person typing, polling and retrying
    per_customer_burst: float = 20.0
    per_token_per_s: float = 50.0          # customer, agent and admin tokens
    per_token_burst: float = 100.0
    per_service_token_per_s: float = 5000.0  # a frontend speaks for many customers
    per_service_token_burst: float = 10000.0
    max_inflight: int = 1000               # unary calls being served at once
    max_streams: int = 10000               # open WatchTicket / WatchAssignments streams
    tracked_keys: int = 100_000            # buckets remembered (LRU)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> Limits:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise InvalidArgument(f"limits.{key}", f"unknown key; expected one of "
                                                       f"{', '.join(known)}")
            whole = known[key].type in ("int", int)
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                    whole and not isinstance(value, int)) or not (
                    math.isfinite(value) and 0 <= value <= 1e9):
                kind = "an integer" if whole else "a number"
                raise InvalidArgument(f"limits.{key}", f"must be {kind} in [0, 1e9]")
            values[key] = value
        return cls(**values)

    @classmethod
    def unlimited(cls) -> Limits:
        return cls(**{f.name: 0 for f in fields(cls) if f.name != "tracked_keys"})


class RateLimiter:
    """Token buckets: ``rate_per_s`` sustained and ``burst`` at once, per key.

    ``wait_s`` is O(1). Memory is bounded by ``max_keys`` buckets: the bucket idle longest is
    forgotten first, and a forgotten key starts again with a full burst.
    """

    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = max(burst, 1.0)
        self.max_keys = max(max_keys, 1)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: level, at

    def wait_s(self, key: str, now_s: float) -> float:
        """Take one token for ``key``: 0.0 if there was one, else the seconds until there is."""
        if self.rate <= 0:
            return 0.0
        level, at = self._buckets.pop(key, (self.burst, now_s))
        level = min(self.burst, level + max(0.0, now_s - at) * self.rate)
        if level >= 1.0:
            level -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - level) / self.rate
        self._buckets[key] = (level, now_s)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class Admission:
    """Counts calls in flight; past the bound a call is refused at once, never queued."""

    def __init__(self, max_inflight: int, max_streams: int) -> None:
        self.max_inflight, self.max_streams = max_inflight, max_streams
        self.inflight = 0
        self.streams = 0
        self.shed = 0
        self.draining = False
        self._idle: asyncio.Event | None = None  # set once no unary call is in flight
        self._unary_slot = _UnarySlot(self)  # stateless beyond this: one serves every call

    def drain(self) -> None:
        """Refuse every new call from now on (UNAVAILABLE: retry elsewhere)."""
        self.draining = True

    async def idle(self) -> None:
        """Return once no unary call is in flight (calls admitted before :meth:`drain`)."""
        while self.inflight:
            self._idle = asyncio.Event()
            await self._idle.wait()

    def _left(self) -> None:
        if self._idle is not None and not self.inflight:
            self._idle.set()

    def unary(self) -> _UnarySlot:
        """``with admission.unary():`` holds one call slot (refused at once past the bound)."""
        return self._unary_slot

    @contextlib.contextmanager
    def stream(self) -> Iterator[None]:
        if self.draining:
            raise Draining("this gateway is shutting down; watch again (from your last "
                           "cursor) through another")
        if self.max_streams and self.streams >= self.max_streams:
            self.shed += 1
            raise Overloaded(f"the gateway has {self.streams} open watch streams, its limit; "
                             "retry with backoff")
        self.streams += 1
        try:
            yield
        finally:
            self.streams -= 1


class _UnarySlot:
    """The context manager of :meth:`Admission.unary`: a plain class, as every unary call
    enters it (a generator-based one costs several times more)."""

    __slots__ = ("_admission",)

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def __enter__(self) -> None:
        a = self._admission
        if a.draining:
            raise Draining("this gateway is shutting down; retry the call (another gateway "
                           "takes it)")
        if a.max_inflight and a.inflight >= a.max_inflight:
            a.shed += 1
            raise Overloaded(f"the gateway is serving {a.inflight} calls, its limit; "
                             "retry with backoff")
        a.inflight += 1

    def __exit__(self, *exc: object) -> None:
        a = self._admission
        a.inflight -= 1
        if a._idle is not None:
            a._left()
