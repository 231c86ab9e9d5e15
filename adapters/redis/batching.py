"""A Redis client that sends the commands its callers issue together as one pipeline.

Who runs this: every engine process (gateway, shard hosts, dispatcher), through
:func:`adapters.redis.connect.redis_client`.

Why: redis-py spends about 150 us of CPU on each command sent alone (connection checkout,
packing, retry bookkeeping, parsing) and about 20 us on each command of a pipeline. Under load
hundreds of actors each send one command at a time; this client queues the commands issued
while its earlier batches are in flight and sends them as one non-transactional pipeline, so
the per-command cost falls as the load rises. Alone, a command goes out at once, as before.

Semantics are those of separate commands: each caller gets its own reply or its own error
(a ``ResponseError`` belongs to that command only; a connection error fails the batch's
commands, each of which may or may not have been applied, as for a single command). Commands
from one caller keep their order (a caller awaits each before sending the next); commands of
one batch run in the order issued. Blocking commands (``XREAD BLOCK``, ``BLPOP``...) never
join a batch: they would hold it up.

Cost: O(1) per command to queue; a batch is one round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

_BLOCKING = {"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX", "BLMPOP",
             "BZMPOP", "WAIT", "SUBSCRIBE", "PSUBSCRIBE", "MONITOR"}


def _word(arg: Any) -> str:
    if isinstance(arg, bytes):
        return arg.decode(errors="replace").upper()
    return arg.upper() if isinstance(arg, str) else ""


def _blocks(args: Sequence[Any]) -> bool:
    name = _word(args[0])
    if name in _BLOCKING:
        return True
    return name in ("XREAD", "XREADGROUP") and any(_word(a) == "BLOCK" for a in args[1:])


class BatchingRedis(aioredis.Redis):
    """``redis.asyncio.Redis`` whose commands, issued together, travel as one pipeline."""

    max_in_flight = 4  # batches on the wire at once; the rest wait and grow

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []
        self._in_flight = 0
        self.batches = 0  # pipelines sent (tests and benchmarks look)
        self.batched_commands = 0
        self.singles = 0  # commands sent alone

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _blocks(args):
            return await super().execute_command(*args, **options)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, options, future))
        if self._in_flight < self.max_in_flight and len(self._pending) == 1:
            # Sent at the end of this loop iteration: commands issued meanwhile join it.
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        if not self._pending or self._in_flight >= self.max_in_flight:
            return
        batch, self._pending = self._pending, []
        self._in_flight += 1
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[tuple[Any, ...], dict[str, Any],
                                            asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                self.singles += 1
                args, options, future = batch[0]
                try:
                    result = await super().execute_command(*args, **options)
                except Exception as exc:  # noqa: BLE001 - the caller's to handle
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
                return
            pipe = self.pipeline(transaction=False)
            for args, options, _ in batch:
                pipe.execute_command(*args, **options)
            try:
                results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # noqa: BLE001 - every command of the batch sees it
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            self.batches += 1
            self.batched_commands += len(batch)
            for (_, _, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue  # its caller was cancelled
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            if self._pending:
                self._flush()
