"""The simulated people of ``surgedesk surge``: customers and agents as real gRPC clients.

One worker process runs a share of the customers and a share of the agents on one asyncio loop
and one channel each. Wall time maps to scenario time by ``t0 + scenario_s / speedup``.

* A **customer** starts its conversation (a ``service`` token acting for it, as a frontend does)
  at its arrival, keeps the position and estimate it was shown, and, if still unserved when its
  patience runs out, leaves the queue. The engine arbitrates that race: ``LeaveQueue`` on a
  ticket already assigned is FAILED_PRECONDITION, and the customer stays served.
* An **agent** opens its desk (watches its assignments, resuming from its cursor if the stream
  breaks) at a random moment in the two minutes before its shift, goes online at its shift
  start with its capacity, greets each customer at once, and after the
  customer's handle time closes the ticket, or transfers it / makes it a work order when the
  customer's conversation has a follow-up. At its shift end it goes away and finishes its
  conversations (``finish``), or hands them over with ``EndShift`` (``hand-over``).

Customers and agents of different workers meet only through the engine. What the report needs
from both sides (when a ticket became assignable, when an agent received it, who holds it) sits
in shared arrays (:class:`Shared`), written by the side that knows it.

**Dispatch lag**, measured by the agent that receives an assignment: receipt time minus the
moment the pairing became possible -- the later of the slot freeing (the agent sent the close,
or came online) and the ticket becoming assignable (the customer sent its start, or the ticket
went back to the line), plus the relaxation delay the routing policy deliberately imposes for
this agent's proficiency. It includes both gRPC round trips and the stream delivery: the delay
a customer behind a free agent actually sees.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from surgedesk.benchmarks.people import AgentPlan, Customer

RETRY = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                   grpc.StatusCode.DEADLINE_EXCEEDED})
SIGN_IN_AHEAD_S = 120.0  # scenario seconds before a shift in which an agent opens its desk
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000),
                   ("grpc.http2.max_pings_without_data", 0)]


@dataclass
class Shared:
    """Per-customer facts both sides need, in shared memory (``multiprocessing.RawArray``).

    Times are wall seconds (``time.time()``, the same clock in every process); 0 means not yet.
    """

    start_sent: Any  # d: when the customer sent StartConversation
    acked: Any  # b: 1 the engine acknowledged the ticket, -1 it never did
    ready_at: Any  # d: when the ticket last became assignable (start, back to the line)
    served_at: Any  # d: when an agent first received it
    engine_wait: Any  # d: the wait the engine measured for that first assignment (engine s)
    served_by: Any  # i: that agent's index + 1
    left_at: Any  # d: when LeaveQueue succeeded
    holder: Any  # i: agent index + 1 holding it now, 0 none
    assignments: Any  # i: how many times it was assigned
    remaining: Any  # d: scenario seconds of handling left in its current phase
    phase: Any  # b: 1 once its transfer or work order happened
    est_p50: Any  # d: scenario seconds
    est_p90: Any  # d
    ahead: Any  # i: tickets ahead when queued, -1 served at once
    queued: Any  # b: had to wait (was shown an estimate)

    @staticmethod
    def create(ctx: Any, customers: tuple[Customer, ...]) -> Shared:
        n = len(customers)
        arrays = {name: ctx.RawArray(code, n) for name, code in (
            ("start_sent", "d"), ("acked", "b"), ("ready_at", "d"), ("served_at", "d"),
            ("engine_wait", "d"),
            ("served_by", "i"), ("left_at", "d"), ("holder", "i"), ("assignments", "i"),
            ("remaining", "d"), ("phase", "b"), ("est_p50", "d"), ("est_p90", "d"),
            ("ahead", "i"), ("queued", "b"))}
        shared = Shared(**arrays)
        for i, c in enumerate(customers):
            shared.remaining[i] = c.follow_after_s if c.follow_up else c.handle_s
            shared.ahead[i] = -1
        return shared


@dataclass(frozen=True)
class WorkerPlan:
    worker: int
    target: str
    secret: bytes
    run_id: str
    speedup: float
    t0: float  # wall time of scenario time 0
    end_s: float  # wall time after which nobody new arrives and the drain begins
    give_up_at: float  # wall time at which waiting customers stop waiting for the engine
    customers: tuple[int, ...]  # indexes into the population, this worker's share
    agents: tuple[int, ...]
    relax_after_s: tuple[tuple[float, float], ...]  # the policy's relaxation steps
    shift_end: str  # finish | hand-over
    wrap_up_s: float
    seed: int
    greet: bool = True  # agents write to each customer when they take the conversation


@dataclass
class WorkerResult:
    worker: int
    latency_s: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    calls: list[tuple[float, float]] = field(default_factory=list)  # (wall sent, seconds), all
    dispatch_lag_s: list[float] = field(default_factory=list)
    arrival_late_s: list[float] = field(default_factory=list)  # sent start later than planned
    conversations: list[tuple[float, float]] = field(default_factory=list)  # wall start, end
    retries: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    double_assignments: list[str] = field(default_factory=list)
    over_capacity: int = 0
    unqualified: list[str] = field(default_factory=list)  # assigned to an agent without the skill
    assigned_while_away: int = 0
    stream_resumes: int = 0
    samples: dict[str, str] = field(default_factory=dict)  # one message per kind of error
    events: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, collections.Counter | collections.defaultdict) else v)
                for k, v in self.__dict__.items()}


BUSY = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})


async def until_accepted(call: Callable[[], Awaitable[Any]], attempts: int = 200,
                         pause_s: float = 0.05) -> Any:
    """An operator's or auditor's call that keeps to the gateway's limits: while the answer is
    RESOURCE_EXHAUSTED or UNAVAILABLE, wait and try again (``attempts`` in all)."""
    for attempt in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in BUSY or attempt == attempts - 1:
                raise
            await asyncio.sleep(pause_s)
    return None


def relax_delay_s(steps: tuple[tuple[float, float], ...], proficiency: float) -> float:
    """Scenario seconds a ticket waits before an agent of this proficiency qualifies."""
    for after_s, min_p in steps:
        if proficiency >= min_p:
            return after_s
    return math.inf


class Worker:
    def __init__(self, plan: WorkerPlan, customers: tuple[Customer, ...],
                 agents: tuple[AgentPlan, ...], shared: Shared) -> None:
        self.plan, self.population, self.agent_plans, self.s = plan, customers, agents, shared
        self.result = WorkerResult(plan.worker)
        self.index = {c.customer_id: i for i, c in enumerate(customers)}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._stop = asyncio.Event()
        self._rng = random.Random(plan.seed * 1009 + plan.worker)

    # ------------------------------------------------------------------ plumbing
    def wall(self, scenario_s: float) -> float:
        return self.plan.t0 + scenario_s / self.plan.speedup

    def token(self, role: str, subject: str) -> tuple[tuple[str, str], ...]:
        from surgedesk.adapters.identity.tokens import bearer_metadata

        return bearer_metadata(self.plan.secret, role, subject, 6 * 3600)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Future[Any]) -> None:
        """A person's task is over. An RPC error that ended it was counted by :meth:`call`;
        anything else is counted here (nothing is left for asyncio to log unretrieved)."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, grpc.aio.AioRpcError):
            self.result.errors[f"task:{type(error).__name__}"] += 1
            self.result.samples.setdefault(f"task:{type(error).__name__}", str(error)[:200])

    async def call(self, method: str, fn: Callable[[], Awaitable[Any]],
                   ok: frozenset[grpc.StatusCode] = frozenset()) -> Any:
        """Run one RPC, retrying what a client may retry (the idempotency key makes it safe).

        Returns the reply, or the status code when it is one of ``ok`` (an expected refusal).
        Raises the last error when it cannot succeed."""
        delay = 0.02
        until = time.time() + 60.0
        while True:
            started = time.perf_counter()
            try:
                reply = await fn()
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code in ok:
                    self.result.latency_s[method].append(time.perf_counter() - started)
                    return code
                if code not in RETRY or time.time() > until:
                    self.result.errors[f"{method}:{code.name}"] += 1
                    raise
                self.result.retries[f"{method}:{code.name}"] += 1
                self.result.samples.setdefault(f"{method}:{code.name}", exc.details() or "")
                await asyncio.sleep(delay * (0.5 + self._rng.random()))
                delay = min(0.5, delay * 2)
                continue
            took = time.perf_counter() - started
            self.result.latency_s[method].append(took)
            self.result.calls.append((time.time() - took, took))
            return reply

    async def sleep_until(self, wall_s: float) -> None:
        delay = wall_s - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ customers
    async def customers(self) -> None:
        from surgedesk.v1 import common_pb2, customer_pb2

        md = self.token("service", f"surge-frontend-{self.plan.worker}")
        stub = self.customer_stub
        p = self.plan
        order = sorted(p.customers, key=lambda i: self.population[i].arrival_s)

        async def one(i: int) -> None:
            c = self.population[i]
            cid = f"{p.run_id}-{c.customer_id}"
            request = customer_pb2.StartConversationRequest(
                customer_id=cid, channel=common_pb2.CHANNEL_APP, skill=c.skill,
                vip_tier=c.vip_tier, first_message="hello", idempotency_key=f"start-{cid}")
            sent = time.time()
            self.result.arrival_late_s.append(sent - self.wall(c.arrival_s))
            self.s.start_sent[i] = sent
            self.s.ready_at[i] = sent
            try:
                reply = await self.call("StartConversation", lambda: stub.StartConversation(
                    request, metadata=md, timeout=10))
            except grpc.aio.AioRpcError:
                self.s.acked[i] = -1
                return
            self.s.acked[i] = 1
            ticket = reply.ticket
            if ticket.state == common_pb2.TICKET_STATE_QUEUED:
                self.s.queued[i] = 1
                est = ticket.estimate
                self.s.est_p50[i] = est.wait_p50_seconds if not est.wait_unknown else math.inf
                self.s.est_p90[i] = est.wait_p90_seconds if not est.wait_unknown else math.inf
                self.s.ahead[i] = est.tickets_ahead
            if not math.isfinite(c.patience_s):
                return
            await self.sleep_until(sent + c.patience_s / p.speedup)
            if self.s.served_at[i] or self._stop.is_set():
                return
            code = await self.call("LeaveQueue", lambda: stub.LeaveQueue(
                customer_pb2.LeaveQueueRequest(ticket_id=ticket.ticket_id),
                metadata=md + (("x-on-behalf-of", cid),), timeout=10),
                ok=frozenset({grpc.StatusCode.FAILED_PRECONDITION}))
            if code != grpc.StatusCode.FAILED_PRECONDITION:
                self.s.left_at[i] = time.time()

        for i in order:
            await self.sleep_until(self.wall(self.population[i].arrival_s))
            if self._stop.is_set():
                return
            self.spawn(one(i))

    # ------------------------------------------------------------------ agents
    async def agent(self, a: int) -> None:
        from surgedesk.v1 import agent_pb2, common_pb2

        plan = self.agent_plans[a]
        p = self.plan
        agent_id = f"{p.run_id}-{plan.agent_id}"
        md = self.token("agent", agent_id)
        stub = self.agent_stub
        free: collections.deque[float] = collections.deque()  # wall times slots became free
        holding: dict[str, tuple[int, float, asyncio.Future[Any] | None]] = {}
        state = {"online": False, "gone": False}
        # A conversation the agent lets go of as its shift ends may have been handed over by
        # its EndShift first: the engine then refuses the close (not the agent's any more).
        let_go = frozenset({grpc.StatusCode.FAILED_PRECONDITION} | (
            {grpc.StatusCode.PERMISSION_DENIED} if p.shift_end == "hand-over" else set()))

        async def converse(ticket_id: str, i: int, received: float) -> None:
            c = self.population[i]
            with contextlib.suppress(grpc.aio.AioRpcError):
                if p.greet:
                    await self.call("AgentSendMessage", lambda: stub.SendMessage(
                        agent_pb2.AgentServiceSendMessageRequest(
                            ticket_id=ticket_id, text="hello, I am here",
                            idempotency_key=f"greet-{agent_id}-{i}"),
                        metadata=md, timeout=10), ok=let_go)
            await self.sleep_until(received + self.s.remaining[i] / p.speedup)
            holding.pop(ticket_id, None)
            self.s.holder[i] = 0
            ended = time.time()
            self.result.conversations.append((received, ended))
            # The slot is free from the moment the agent lets go (wrap-up after a close).
            if c.follow_up and not self.s.phase[i]:
                self.s.phase[i] = 1
                self.s.remaining[i] = c.follow_handle_s
                self.s.ready_at[i] = ended
                if state["online"]:
                    free.append(ended)
                if c.follow_up == "transfer":
                    await self.call("Transfer", lambda: stub.Transfer(agent_pb2.TransferRequest(
                        ticket_id=ticket_id, skill=c.follow_skill, summary="over to you"),
                        metadata=md, timeout=10), ok=let_go)
                else:
                    priority = getattr(common_pb2, f"WORK_ORDER_PRIORITY_{c.priority.upper()}")
                    await self.call("CreateWorkOrder", lambda: stub.CreateWorkOrder(
                        agent_pb2.CreateWorkOrderRequest(
                            ticket_id=ticket_id, department=c.follow_skill, priority=priority,
                            description="follow-up"), metadata=md, timeout=10),
                        ok=let_go)
                return
            if state["online"]:
                free.append(ended + p.wrap_up_s / p.speedup)
            await self.call("CloseTicket", lambda: stub.CloseTicket(
                agent_pb2.CloseTicketRequest(ticket_id=ticket_id, summary="served"),
                metadata=md, timeout=10), ok=let_go)

        def assigned(ticket: Any, engine_waited_s: float = 0.0) -> None:
            received = time.time()
            i = self.index.get(ticket.customer_id.removeprefix(f"{p.run_id}-"))
            if i is None or ticket.ticket_id in holding:
                return
            c = self.population[i]
            if state["gone"]:  # routed to us before our EndShift, which handed it on
                self.result.assigned_while_away += 1
                return
            self.s.assignments[i] += 1
            if self.s.holder[i]:
                self.result.double_assignments.append(ticket.ticket_id)
            self.s.holder[i] = a + 1
            if not state["online"]:
                self.result.assigned_while_away += 1
            skill = c.follow_skill if self.s.phase[i] else c.skill
            proficiency = plan.skills.get(skill)
            if proficiency is None:
                self.result.unqualified.append(ticket.ticket_id)
                proficiency = 0.0
            if free:
                slot_free = free.popleft()
            else:
                self.result.over_capacity += 1 if len(holding) >= plan.capacity else 0
                slot_free = received
            ready = self.s.ready_at[i] + relax_delay_s(p.relax_after_s, proficiency) / p.speedup
            self.result.dispatch_lag_s.append(max(0.0, received - max(slot_free, ready)))
            if not self.s.served_at[i]:
                self.s.served_at[i] = received
                self.s.engine_wait[i] = engine_waited_s
                self.s.served_by[i] = a + 1
            task = self.spawn(converse(ticket.ticket_id, i, received))
            holding[ticket.ticket_id] = (i, received, task)

        async def watch() -> None:
            cursor = ""
            while not self._stop.is_set():
                stream = stub.WatchAssignments(agent_pb2.WatchAssignmentsRequest(
                    agent_id=agent_id, cursor=cursor), metadata=md)
                try:
                    async for event in stream:
                        cursor = event.cursor
                        self.result.events += 1
                        te = event.ticket_event
                        if te.HasField("assigned") and te.assigned.agent_id == agent_id:
                            assigned(event.ticket, te.assigned.waited_seconds)
                except grpc.aio.AioRpcError as exc:
                    key = f"WatchAssignments:{exc.code().name}"
                    self.result.retries[key] += 1
                    self.result.samples.setdefault(key, exc.details() or "")
                    if exc.code() not in RETRY and exc.code() != grpc.StatusCode.CANCELLED:
                        self.result.errors[f"WatchAssignments:{exc.code().name}"] += 1
                        return
                if self._stop.is_set():
                    return
                self.result.stream_resumes += 1
                await asyncio.sleep(0.05)

        # The desk opens staffed: shifts starting at 0 begin during the lead-in before the
        # first arrival (the simulator, too, starts shifts before arrivals at equal times).
        # An agent opens its desk (the watch) in the minutes before its shift, as people do,
        # and goes online exactly at the shift start: availability is the simulator's, and
        # a shift change is not 200 desks opening in the same millisecond.
        if plan.from_s > 0:
            opens_s = max(0.0, plan.from_s - self._rng.uniform(0.0, SIGN_IN_AHEAD_S))
            await self.sleep_until(self.wall(opens_s))
            self.spawn(watch())
            await self.sleep_until(self.wall(plan.from_s))
        else:
            self.spawn(watch())
        if self._stop.is_set():
            return
        went_online = time.time()
        await self.call("SetPresence", lambda: stub.SetPresence(agent_pb2.SetPresenceRequest(
            agent_id=agent_id, presence=common_pb2.PRESENCE_ONLINE, capacity=plan.capacity),
            metadata=md, timeout=10))
        state["online"] = True
        free.extend([went_online] * max(0, plan.capacity - len(holding)))
        if not math.isfinite(plan.to_s):
            return
        await self.sleep_until(self.wall(plan.to_s))
        state["online"] = False
        free.clear()
        if p.shift_end == "hand-over":
            def let_go_of_all() -> None:  # the engine hands these on to colleagues or lines
                left = time.time()
                for i, since, task in list(holding.values()):
                    if task is not None:
                        task.cancel()
                    self.s.remaining[i] = max(0.0,
                                              self.s.remaining[i] - (left - since) * p.speedup)
                    self.s.holder[i] = 0
                    self.s.ready_at[i] = left
                    self.result.conversations.append((since, left))
                holding.clear()

            let_go_of_all()
            await self.call("EndShift", lambda: stub.EndShift(
                agent_pb2.EndShiftRequest(agent_id=agent_id), metadata=md, timeout=10))
            # What was routed to us while the EndShift was on its way went on with it.
            state["gone"] = True
            let_go_of_all()
        else:
            await self.call("SetPresence", lambda: stub.SetPresence(agent_pb2.SetPresenceRequest(
                agent_id=agent_id, presence=common_pb2.PRESENCE_AWAY), metadata=md, timeout=10))

    # ------------------------------------------------------------------ running
    async def run(self) -> WorkerResult:
        from surgedesk.v1 import agent_pb2_grpc, customer_pb2_grpc

        async with grpc.aio.insecure_channel(self.plan.target, options=CHANNEL_OPTIONS) as cc, \
                grpc.aio.insecure_channel(self.plan.target, options=CHANNEL_OPTIONS) as ac:
            self.customer_stub = customer_pb2_grpc.CustomerServiceStub(cc)
            self.agent_stub = agent_pb2_grpc.AgentServiceStub(ac)
            for a in self.plan.agents:
                self.spawn(self.agent(a))
            self.spawn(self.customers())
            await self.sleep_until(self.plan.end_s)
            # Drain: until every customer of this worker has an outcome, or time is up.
            while time.time() < self.plan.give_up_at and not self._settled():
                await asyncio.sleep(0.1)
            self._stop.set()
            await asyncio.sleep(0.2)
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError, Exception):
                    await task
        return self.result

    def _settled(self) -> bool:
        s = self.s
        return all(s.acked[i] == -1 or s.served_at[i] or s.left_at[i]
                   for i in self.plan.customers)


def run_worker(plan: WorkerPlan, customers: tuple[Customer, ...], agents: tuple[AgentPlan, ...],
               shared: Shared, out: Any) -> None:
    """Process entry point: run the worker's share and put its result on ``out``."""
    import uvloop

    try:
        result = uvloop.run(Worker(plan, customers, agents, shared).run())
        out.put(("ok", plan.worker, result.as_dict()))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        out.put(("error", plan.worker, f"{type(exc).__name__}: {exc}"))
