"""Coalescing concurrent calls into one call per destination (micro-batching).

A Ray call costs about as much for a hundred items as for one, so the gateway gathers the
requests made during one turn of its event loop and sends them together. :class:`Coalescer`
takes a ``call_many(items) -> results`` coroutine (results in the same order; an exception
instance as a result fails only its own request) and offers ``await submit(item)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from surgedesk.engine.errors import Recovering


class Coalescer:
    def __init__(self, call_many: Callable[[list[Any]], Awaitable[Sequence[Any]]], *,
                 batch_max: int = 200, name: str = "") -> None:
        self._call_many = call_many
        self.batch_max = batch_max
        self.name = name
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._scheduled = False
        self.calls = 0
        self.items = 0

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        result = await future
        if isinstance(result, BaseException):
            raise result
        return result

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        for start in range(0, len(pending), self.batch_max):
            loop.create_task(self._call(pending[start:start + self.batch_max]))

    async def _call(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        self.calls += 1
        self.items += len(batch)
        try:
            results: Sequence[Any] = await self._call_many([item for item, _ in batch])
        except Exception as exc:  # the destination died and could not be retried
            results = [Recovering(f"{self.name}: {type(exc).__name__}")] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
