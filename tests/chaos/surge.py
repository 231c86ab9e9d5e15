"""A small real-time surge against a gateway, by real gRPC clients that behave as clients must:
retry what may be retried (with the same idempotency key), resume streams from their cursor.

Customers arrive evenly over ``arrival_s``, open a conversation and write a few messages;
agents go online, watch their assignments, answer each ticket after ``handle_s`` and close it;
some customers watch their ticket. The :class:`Ledger` keeps what the engine acknowledged and
what the streams delivered, for :mod:`tests.chaos.invariants` to check against the journal.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from dataclasses import dataclass, field

import grpc

from surgedesk.adapters.identity.tokens import mint
from surgedesk.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)

RETRY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
         grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL,
         grpc.StatusCode.CANCELLED}
# What the published retry policy retries (protos/surgedesk/v1/service_config.json), by name.
RETRY_POLICY_CODES = frozenset({"UNAVAILABLE", "CANCELLED"})
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


@dataclass(frozen=True)
class SurgePlan:
    customers: int = 150
    arrival_s: float = 12.0
    agents: int = 6
    capacity: int = 2
    handle_s: float = 1.5
    messages: int = 2
    watch_every: int = 5  # every 5th customer watches its ticket
    give_up_s: float = 90.0  # a call retried this long is a failure of the engine
    skill: str = "presale"
    connections: int = 6  # the people's calls spread over this many connections


@dataclass
class Ledger:
    tickets: dict[str, str] = field(default_factory=dict)  # customer -> ticket (acknowledged)
    messages: set[tuple[str, str]] = field(default_factory=set)  # (ticket, idempotency key)
    closed: set[str] = field(default_factory=set)  # tickets an agent closed (acknowledged)
    agent_cursors: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    watch_cursors: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    retries: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)  # calls that never succeeded


class Surge:
    def __init__(self, address: str, secret: bytes, plan: SurgePlan, *,
                 strict_retries: bool = False) -> None:
        """``strict_retries``: retry only what the published retry policy retries
        (UNAVAILABLE); otherwise also what a patient client might (a deadline, a limit)."""
        self.address, self.secret, self.plan = address, secret, plan
        self.retry = ({grpc.StatusCode[name] for name in RETRY_POLICY_CODES} if strict_retries
                      else RETRY)
        self.ledger = Ledger()
        self._stop = asyncio.Event()
        self._handling: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def token(self, role: str, subject: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {mint(self.secret, role, subject, time.time(), 3600)}"),)

    async def retrying(self, what: str, call):  # noqa: ANN001 - a zero-argument coroutine
        until = time.monotonic() + self.plan.give_up_s
        delay = 0.05
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in self.retry or time.monotonic() > until:
                    raise
                self.ledger.retries[exc.code().name] += 1
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    # ------------------------------------------------------------------ customers
    async def customer(self, i: int) -> None:
        plan = self.plan
        await asyncio.sleep(i * plan.arrival_s / plan.customers)
        customer_id = f"cust-{i}"
        md = self.token("customer", customer_id)
        customers, _ = self._stubs(i)
        request = customer_pb2.StartConversationRequest(
            customer_id=customer_id, channel=common_pb2.CHANNEL_APP, skill=plan.skill,
            first_message=f"hello from {i}", idempotency_key=f"start-{i}")
        try:
            reply = await self.retrying("start", lambda: customers.StartConversation(
                request, metadata=md, timeout=5))
        except grpc.aio.AioRpcError as exc:
            self.ledger.failures.append(f"start {customer_id}: {exc.code().name}")
            return
        ticket_id = reply.ticket.ticket_id
        self.ledger.tickets[customer_id] = ticket_id
        self.ledger.messages.add((ticket_id, f"start-{i}"))
        if i % plan.watch_every == 0:
            self._spawn(self.watch_ticket(ticket_id, md, customers))
        for m in range(plan.messages):
            await asyncio.sleep(0.3)
            key = f"m{m}"
            message = customer_pb2.CustomerServiceSendMessageRequest(ticket_id=ticket_id,
                                                              text=f"message {m}",
                                                              idempotency_key=key)
            try:
                await self.retrying("message", lambda: customers.SendMessage(  # noqa: B023
                    message, metadata=md, timeout=5))  # noqa: B023
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    break  # served and closed already
                self.ledger.failures.append(f"message {ticket_id}/{key}: {exc.code().name}")
                return
            self.ledger.messages.add((ticket_id, key))

    async def watch_ticket(self, ticket_id: str, md: tuple[tuple[str, str], ...],
                           customers: customer_pb2_grpc.CustomerServiceStub) -> None:
        cursor = ""
        while not self._stop.is_set():
            stream = customers.WatchTicket(customer_pb2.WatchTicketRequest(
                ticket_id=ticket_id, cursor=cursor), metadata=md)
            try:
                async for item in stream:
                    event = item.event
                    if event.HasField("estimate"):
                        continue  # not history: it carries the last event's cursor
                    self.ledger.watch_cursors[ticket_id].append(event.cursor)
                    cursor = event.cursor
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in self.retry:
                    self.ledger.failures.append(f"watch {ticket_id}: {exc.code().name}")
                    return
                self.ledger.retries["watch"] += 1
            await asyncio.sleep(0.2)

    # ------------------------------------------------------------------ agents
    async def agent(self, a: int) -> None:
        agent_id = f"agent-{a}"
        md = self.token("agent", agent_id)
        _, agents = self._stubs(a)
        await self.retrying("presence", lambda: agents.SetPresence(
            agent_pb2.SetPresenceRequest(agent_id=agent_id, presence=common_pb2.PRESENCE_ONLINE,
                                         capacity=self.plan.capacity), metadata=md, timeout=5))
        cursor = ""
        while not self._stop.is_set():
            stream = agents.WatchAssignments(agent_pb2.WatchAssignmentsRequest(
                agent_id=agent_id, cursor=cursor), metadata=md)
            try:
                async for event in stream:
                    self.ledger.agent_cursors[agent_id].append(event.cursor)
                    cursor = event.cursor
                    te = event.ticket_event
                    if te.HasField("assigned") and te.assigned.agent_id == agent_id and (
                            te.ticket_id not in self._handling):
                        self._handling.add(te.ticket_id)
                        self._spawn(self.handle(agent_id, te.ticket_id, md, agents))
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in self.retry:
                    self.ledger.failures.append(f"assignments {agent_id}: {exc.code().name}")
                    return
                self.ledger.retries["assignments"] += 1
            await asyncio.sleep(0.2)

    async def handle(self, agent_id: str, ticket_id: str, md: tuple[tuple[str, str], ...],
                     agents: agent_pb2_grpc.AgentServiceStub) -> None:
        await asyncio.sleep(self.plan.handle_s)
        key = f"reply-{agent_id}"
        try:
            await self.retrying("reply", lambda: agents.SendMessage(
                agent_pb2.AgentServiceSendMessageRequest(ticket_id=ticket_id, text="done",
                                                  idempotency_key=key),
                metadata=md, timeout=5))
            self.ledger.messages.add((ticket_id, key))
            await self.retrying("close", lambda: agents.CloseTicket(
                agent_pb2.CloseTicketRequest(ticket_id=ticket_id, summary="served"),
                metadata=md, timeout=5))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                self.ledger.failures.append(f"handle {ticket_id}: {exc.code().name}")
                return
        self.ledger.closed.add(ticket_id)

    # ------------------------------------------------------------------ running it
    def _spawn(self, coro) -> None:  # noqa: ANN001
        self._tasks.append(asyncio.get_running_loop().create_task(coro))

    async def run(self, fault=None, fault_at_s: float = 5.0, drain_s: float = 60.0) -> Ledger:  # noqa: ANN001
        """Run the surge; call ``fault()`` (a coroutine that breaks something and brings it
        back) ``fault_at_s`` in; return once every acknowledged ticket was closed by its agent
        (or ``drain_s`` after the last arrival). The people share ``plan.connections``
        connections (each its own, so that gateways sharing the port each get some)."""
        channels = [grpc.aio.insecure_channel(self.address, options=[
            *CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)])
            for _ in range(self.plan.connections)]
        try:
            await self._run(channels, fault, fault_at_s, drain_s)
        finally:
            for channel in channels:
                await channel.close()
        return self.ledger

    def _stubs(self, n: int) -> tuple[customer_pb2_grpc.CustomerServiceStub,
                                      agent_pb2_grpc.AgentServiceStub]:
        return self._customer_stubs[n % len(self._customer_stubs)], self._agent_stubs[
            n % len(self._agent_stubs)]

    async def _run(self, channels, fault, fault_at_s: float, drain_s: float) -> None:  # noqa: ANN001
        self._customer_stubs = [customer_pb2_grpc.CustomerServiceStub(c) for c in channels]
        self._agent_stubs = [agent_pb2_grpc.AgentServiceStub(c) for c in channels]
        for a in range(self.plan.agents):
            self._spawn(self.agent(a))
        arrivals = [asyncio.get_running_loop().create_task(self.customer(i))
                    for i in range(self.plan.customers)]
        if fault is not None:
            await asyncio.sleep(fault_at_s)
            await fault()
        await asyncio.gather(*arrivals)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and not set(self.ledger.tickets.values()) <= (
                self.ledger.closed):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the last events reach the streams
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await task
