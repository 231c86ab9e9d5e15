"""Virtual-time simulation of a scenario through the engine's own routing core.

Who runs this: ``surgedesk simulate``, tests and the benchmark scripts, in one thread.

A discrete-event loop: arrivals, abandonments, conversation ends, shift starts and ends, and the
dispatcher's own timers (relaxation steps, sticky windows) sit in one heap ordered by virtual
time. Each is turned into an :mod:`engine.events` event for :class:`DispatcherCore` -- the very
object the production dispatcher actor runs -- and its :class:`AssignTicket` commands are carried
out: the conversation occupies one slot of the agent for the customer's handle time. Every
customer's ticket also walks the life cycle of :mod:`engine.lifecycle`, so an illegal step
would raise here exactly as in production.

The customer is shown the core's estimate when queued (p50/p90); the records keep it to check
calibration afterwards. Dispatch lag in virtual time is zero by construction (a decision takes
no virtual time), so the report's ``dispatch_lag_ms`` is the wall-clock time the core spent on
each event that produced an assignment: the delay the routing core itself would add.

Cost: O(E log E) for E events; each event costs the core's documented O(log n).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.population import Population
from engine.dispatcher import DispatcherCore, EstimatorConfig
from engine.events import (
    AgentPresenceChanged,
    ClockTicked,
    Command,
    ConversationEnded,
    Event,
    TicketLeft,
    TicketQueued,
)
from engine.lifecycle import TicketEvent, TicketState, next_state
from engine.policies import RoutingPolicy

# Event kinds; at equal times, lower kinds go first: capacity is freed before new customers
# arrive, so a customer arriving at the very instant a slot frees is served.
_END, _SHIFT_START, _SHIFT_END, _ARRIVAL, _ABANDON, _WAKEUP, _SAMPLE = range(7)


@dataclass(slots=True)
class CustomerRecord:
    customer_id: str
    skill: str
    vip: int
    arrival_s: float
    est_p50_s: float = 0.0
    est_p90_s: float = 0.0
    outcome: str = "waiting"
    wait_s: float = 0.0
    agent_id: str = ""
    queued: bool = False  # had to wait (was shown a non-zero estimate)
    ahead: int = -1  # tickets ahead when queued (-1: served at once)
    state: TicketState = TicketState.QUEUED


@dataclass(slots=True)
class TimelinePoint:
    t_s: float
    queued: int
    busy_capacity: int
    arrivals: int
    wait_p90_s: float


@dataclass
class SimulationResult:
    records: list[CustomerRecord]
    timeline: list[TimelinePoint]
    decision_ms: list[float]
    events: int
    wall_s: float
    extra: dict = field(default_factory=dict)


def timeline_bin_s(duration_s: float) -> float:
    """A bin width giving at most ~300 points: 60 s for a two-hour run, longer for days."""
    for width in (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0):
        if duration_s / width <= 300:
            return width
    return 3600.0


def simulate(
    population: Population,
    policy: RoutingPolicy | None = None,
    *,
    estimator: EstimatorConfig | None = None,
    progress: Callable[[float, float], None] | None = None,
    check_invariants: bool = False,
) -> SimulationResult:
    """Run the population through a fresh :class:`DispatcherCore` in virtual time."""
    if estimator is None:
        estimator = EstimatorConfig(handle_s_by_skill=dict(population.handle_mean_s))
    core = DispatcherCore(policy, estimator)
    customers = population.customers
    records = [CustomerRecord(c.customer_id, c.skill, c.vip_tier, c.arrival_s) for c in customers]
    heap: list[tuple[float, int, int, Any]] = []
    seq = 0

    def push(t: float, kind: int, payload: Any) -> None:
        nonlocal seq
        heapq.heappush(heap, (t, kind, seq, payload))
        seq += 1

    for i, c in enumerate(customers):
        push(c.arrival_s, _ARRIVAL, i)
    agents = {a.agent_id: a for a in population.agents}
    for a in population.agents:
        push(a.from_s, _SHIFT_START, a.agent_id)
        if math.isfinite(a.to_s):
            push(a.to_s, _SHIFT_END, a.agent_id)
    bin_s = timeline_bin_s(max(population.duration_s, 1.0))
    push(bin_s, _SAMPLE, 0)

    index_of = {c.customer_id: i for i, c in enumerate(customers)}
    timeline: list[TimelinePoint] = []
    bin_arrivals = 0
    bin_waits: list[float] = []
    decision_ms: list[float] = []
    scheduled_wakeup = math.inf
    waiting = 0
    open_customers = len(customers)
    busy = 0
    events = 0
    started = time.perf_counter()
    last_progress = -math.inf
    end_hint = max(population.duration_s, 1.0)

    def apply(commands: list[Command], now: float) -> None:
        nonlocal waiting, busy
        for cmd in commands:
            i = index_of[cmd.ticket_id]
            rec = records[i]
            rec.state = next_state(rec.state, TicketEvent.ASSIGNED)
            rec.outcome = "served"
            rec.wait_s = now - rec.arrival_s
            rec.agent_id = cmd.agent_id
            if rec.queued:
                waiting -= 1
            busy += 1
            bin_waits.append(rec.wait_s)
            push(now + customers[i].handle_s, _END, (cmd.agent_id, cmd.ticket_id))

    def feed(event: Event, now: float) -> list[Command]:
        t0 = time.perf_counter()
        out = core.handle(event, now)
        if out:
            decision_ms.append((time.perf_counter() - t0) * 1000.0)
        if check_invariants:
            core.check_invariants()
        return out

    while heap:
        now, kind, _, payload = heapq.heappop(heap)
        events += 1
        if kind == _ARRIVAL:
            i = payload
            c = customers[i]
            bin_arrivals += 1
            out = feed(TicketQueued(c.customer_id, c.skill, c.vip_tier), now)
            if core.is_waiting(c.customer_id):
                rec = records[i]
                rec.queued = True
                waiting += 1
                est = core.queue_status(c.customer_id, now).estimate
                rec.est_p50_s, rec.est_p90_s = est.p50_s, est.p90_s
                rec.ahead = est.ahead
                if math.isfinite(c.patience_s):
                    push(now + c.patience_s, _ABANDON, i)
            apply(out, now)
        elif kind == _END:
            agent_id, ticket_id = payload
            i = index_of[ticket_id]
            rec = records[i]
            rec.state = next_state(rec.state, TicketEvent.AGENT_WROTE)
            rec.state = next_state(rec.state, TicketEvent.AGENT_CLOSED)
            busy -= 1
            open_customers -= 1
            apply(feed(ConversationEnded(agent_id, ticket_id), now), now)
        elif kind == _ABANDON:
            i = payload
            rec = records[i]
            wake = core.next_wakeup_s()
            if wake is not None and wake <= now:
                # A timer due at this very instant (say, a relaxation step) comes first.
                apply(feed(ClockTicked(), now), now)
            if rec.outcome == "waiting" and core.is_waiting(rec.customer_id):
                feed(TicketLeft(rec.customer_id), now)
                rec.state = next_state(rec.state, TicketEvent.CUSTOMER_LEFT)
                rec.outcome = "abandoned"
                rec.wait_s = now - rec.arrival_s
                waiting -= 1
                open_customers -= 1
        elif kind in (_SHIFT_START, _SHIFT_END):
            a = agents[payload]
            apply(feed(AgentPresenceChanged(a.agent_id, a.skills, a.capacity,
                                            kind == _SHIFT_START), now), now)
        elif kind == _WAKEUP:
            scheduled_wakeup = math.inf
            apply(feed(ClockTicked(), now), now)
        elif kind == _SAMPLE:
            ordered = sorted(bin_waits)
            p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if ordered else 0.0
            timeline.append(TimelinePoint(now - bin_s, waiting, busy, bin_arrivals, p90))
            bin_arrivals = 0
            bin_waits = []
            if heap or now < population.duration_s:
                push(now + bin_s, _SAMPLE, 0)
        wake = core.next_wakeup_s()
        if wake is not None and wake < scheduled_wakeup:
            scheduled_wakeup = wake
            push(max(wake, now), _WAKEUP, None)
        if progress is not None and now - last_progress >= end_hint / 200:
            last_progress = now
            progress(now, end_hint)
    for rec in records:
        if rec.outcome == "waiting":
            rec.wait_s = max(rec.wait_s, (timeline[-1].t_s + bin_s if timeline else 0.0) - rec.arrival_s)
    if progress is not None:
        progress(end_hint, end_hint)
    return SimulationResult(records, timeline, decision_ms, events, time.perf_counter() - started,
                            {"statistics": core.statistics()})
