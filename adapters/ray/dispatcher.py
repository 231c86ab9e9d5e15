"""The dispatcher host: the Ray actor named ``dispatcher`` that makes every routing decision.

It runs a journaled :class:`~surgedesk.adapters.redis.dispatch_journal.DispatcherService`: every
routing event is in Redis before it is applied, and a restarted host (Ray restarts it, or a new
gateway starts it) replays the journal before its first answer, so the lines come back in their
original order and the agents with their loads. Chat messages never pass through here.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from typing import Any

import ray

from surgedesk.adapters.ray.batching import Coalescer
from surgedesk.adapters.ray.shards import NAMESPACE, portable
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.dispatch_journal import STREAM, DispatcherService, RoutingEntry
from surgedesk.engine.dispatcher import DispatcherCore, EstimatorConfig, QueueStatus
from surgedesk.engine.errors import SurgedeskError
from surgedesk.engine.events import ClockTicked, Command, Event, TicketQueued
from surgedesk.engine.policies import policy_named


@ray.remote(max_restarts=-1, max_task_retries=-1)
class DispatcherHost:
    def __init__(self, redis_url: str, policy: str = "default", stream: str = STREAM,
                 prior_handle_s: float = 300.0, clock: Any = None) -> None:
        self._redis_url = redis_url
        self._clock = clock or time.time
        self._policy = policy_named(policy)
        self._estimator = EstimatorConfig(prior_handle_s=prior_handle_s)
        self._stream = stream
        self._service: DispatcherService | None = None
        self._starting: asyncio.Lock | None = None

    async def _started(self) -> DispatcherService:
        # Calls arrive concurrently after a restart: exactly one of them rebuilds the core
        # (two cores would each assign the same waiting tickets).
        if self._service is None:
            if self._starting is None:
                self._starting = asyncio.Lock()
            async with self._starting:
                if self._service is None:
                    service = DispatcherService(
                        redis_client(self._redis_url),
                        lambda: DispatcherCore(self._policy, self._estimator), self._clock,
                        stream=self._stream)
                    await service.start()
                    self._service = service
        return self._service

    async def submit_many(self, events: list[Event]) -> list[Any]:
        """Journal and apply events in order; per event, its assignments or its error."""
        service = await self._started()
        results: list[Any] = []
        for event in events:
            try:
                results.append(await service.submit(event))
            except BaseException as exc:  # noqa: BLE001 - returned, not raised, per event
                results.append(portable(exc, "dispatcher"))
        return results

    async def queue_many(self, events: list[TicketQueued]) -> list[Any]:
        """Queue tickets; per ticket ``(assignments, status or None)`` or its error: the
        position and estimate come back in the same round trip."""
        service = await self._started()
        return await self._answers(service, [(e.ticket_id, service.submit(e)) for e in events])

    async def queue_landed_many(self, entries: list[RoutingEntry]) -> list[Any]:
        """As :meth:`queue_many`, for ``TicketQueued`` entries the tickets journaled with
        their opens. All are handed over before any is awaited: they may come out of order."""
        service = await self._started()
        return await self._answers(service, [(e.ticket_id, asyncio.ensure_future(
            service.landed(e))) for e in entries])

    async def _answers(self, service: DispatcherService,
                       queued: list[tuple[str, Awaitable[list[Any]]]]) -> list[Any]:
        out: list[Any] = []
        for ticket_id, assigned in queued:
            try:
                out.append((await assigned, service.waiting_status(ticket_id, self._clock())))
            except BaseException as exc:  # noqa: BLE001 - returned, not raised, per ticket
                out.append(portable(exc, "dispatcher"))
        return out

    async def tick(self) -> list[Any]:
        """Run due timers (relaxation wake-ups, sticky windows) if any is due."""
        service = await self._started()
        due = service.core.next_wakeup_s()
        if due is None or due > self._clock():
            return []
        return await service.submit(ClockTicked())

    async def queue_status(self, ticket_id: str) -> QueueStatus | SurgedeskError:
        return (await self.queue_status_many([ticket_id]))[0]

    async def queue_status_many(self, ticket_ids: list[str]) -> list[QueueStatus | SurgedeskError]:
        service = await self._started()
        now_s = self._clock()
        out: list[QueueStatus | SurgedeskError] = []
        for ticket_id in ticket_ids:
            try:
                out.append(service.core.queue_status(ticket_id, now_s))
            except SurgedeskError as exc:
                out.append(exc)
        return out

    async def snapshot(self) -> dict[str, Any]:
        """Lines and agent loads, for tests and operators."""
        core = (await self._started()).core
        return {
            "lines": {s: core.queue_order(s) for s in core.skills()},
            "agents": {a.agent_id: sorted(a.active) for a in core.capacity.agents()},
            "replayed": (await self._started()).replayed,
            "pid": os.getpid(),
        }

    async def statistics(self) -> Any:
        return (await self._started()).core.statistics()

    async def skill_report(self) -> list[dict[str, Any]]:
        return (await self._started()).core.skill_report(self._clock())


def start_dispatcher(redis_url: str, policy: str = "default", clock: Any = None,
                     **options: Any) -> Any:
    return DispatcherHost.options(  # type: ignore[attr-defined]  # added by @ray.remote
        name="dispatcher", namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
        **options,
    ).remote(redis_url, policy, clock=clock)


class DispatcherClient:
    """The gateway's view of the dispatcher: concurrent submits travel in one Ray call."""

    def __init__(self, host: Any, batch_max: int = 500) -> None:
        self.host = host

        async def call(events: list[Event]) -> list[Any]:
            return await host.submit_many.remote(events)

        self._lane = Coalescer(call, batch_max=batch_max, name="dispatcher")

        async def status(ticket_ids: list[str]) -> list[Any]:
            return await host.queue_status_many.remote(ticket_ids)

        self._status_lane = Coalescer(status, batch_max=batch_max, name="dispatcher")

        async def queue(events: list[TicketQueued]) -> list[Any]:
            return await host.queue_many.remote(events)

        self._queue_lane = Coalescer(queue, batch_max=batch_max, name="dispatcher")

        async def landed(entries: list[RoutingEntry]) -> list[Any]:
            return await host.queue_landed_many.remote(entries)

        self._landed_lane = Coalescer(landed, batch_max=batch_max, name="dispatcher")

    async def queue(self, event: TicketQueued) -> tuple[list[Command], QueueStatus | None]:
        """Queue a ticket: its assignments (if an agent was free) and its status (if not)."""
        return await self._queue_lane.submit(event)

    async def queue_landed(self, entry: RoutingEntry) -> tuple[list[Command], QueueStatus | None]:
        """Apply a ticket's journaled ``TicketQueued``: answered as :meth:`queue`."""
        return await self._landed_lane.submit(entry)

    async def submit(self, event: Event) -> list[Command]:
        return await self._lane.submit(event)

    async def skill_report(self) -> list[dict[str, Any]]:
        return await self.host.skill_report.remote()

    async def holdings(self) -> dict[str, list[str]]:
        return (await self.host.snapshot.remote())["agents"]

    async def tick(self) -> list[Command]:
        result = await self.host.tick.remote()
        if isinstance(result, BaseException):
            raise result
        return result

    async def queue_status(self, ticket_id: str) -> QueueStatus:
        return await self._status_lane.submit(ticket_id)
