"""Virtual-time simulation of a scenario through the engine's own routing core.

Who runs this: ``surgedesk simulate``, tests and the benchmark scripts, in one thread.

A discrete-event loop: arrivals, abandonments, conversation ends, transfers and work orders,
offer decisions, shift starts and ends, and the dispatcher's own timers (relaxation steps,
sticky windows, wrap-up, pauses) sit in one heap ordered by virtual time. Each is turned into an
:mod:`surgedesk.engine.events` event for :class:`DispatcherCore` -- the very object the production
dispatcher actor runs -- and its :class:`AssignTicket` commands are carried out: the conversation
occupies one slot of the agent for the customer's handle time. Every customer's ticket also walks
the life cycle of :mod:`surgedesk.engine.lifecycle`, so an illegal step would raise here exactly as
in production.

The customer is shown the core's estimate when queued (p50/p90); the records keep it to check
calibration afterwards. Dispatch lag in virtual time is zero by construction (a decision takes
no virtual time), so the report's ``dispatch_lag_ms`` is the wall-clock time the core spent on
each event that produced an assignment: the delay the routing core itself would add.

Cost: O(E log E) for E events; each event costs the core's documented O(log n).
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from surgedesk.benchmarks.people import Population
from surgedesk.benchmarks.scenario import ProcessSpec
from surgedesk.engine.dispatcher import DispatcherCore, EstimatorConfig
from surgedesk.engine.events import (
    AgentPresenceChanged,
    AgentShiftEnded,
    ClockTicked,
    Command,
    ConversationEnded,
    Event,
    ReturnTicket,
    RosterPlanned,
    TicketLeft,
    TicketQueued,
    TicketRequeued,
)
from surgedesk.engine.lifecycle import TicketEvent, TicketState, next_state
from surgedesk.engine.policies import RoutingPolicy
from surgedesk.engine.roster import PlannedShift

# Event kinds; at equal times, lower kinds go first: capacity is freed before new customers
# arrive, so a customer arriving at the very instant a slot frees is served.
(_END, _FOLLOW, _SHIFT_START, _AGENT_BACK, _SHIFT_END, _OFFER_ACCEPTED, _OFFER_DECLINED,
 _OFFER_LAPSED, _ARRIVAL, _ABANDON, _WAKEUP, _SAMPLE, _REESTIMATE) = range(13)
REESTIMATE_AFTER_S = (60.0, 300.0, 900.0)  # a waiting customer's estimate is judged again then


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
    # the estimate streamed to them while they still waited: (seconds waited, p50, p90)
    reestimates: list[tuple[float, float, float]] = field(default_factory=list)


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
    process: ProcessSpec | None = None,
    seed: int = 0,
    plan_known: bool = True,
) -> SimulationResult:
    """Run the population through a fresh :class:`DispatcherCore` in virtual time.

    ``process`` adds the service process that shapes waits: offers accepted, declined or
    missed (and agents set away after misses), wrap-up, shift ends that hand conversations
    over, and each customer's transfer or work order (drawn in the population).

    ``plan_known``: the desk knows its staffing plan -- every agent's shift, ending when the
    plan says (``planned_to_s``; an agent who leaves earlier drops out unannounced) -- and
    tells the core at the start (:class:`RosterPlanned`), as a workforce-management roster
    would."""
    if estimator is None:
        estimator = EstimatorConfig(handle_s_by_skill=dict(population.handle_mean_s))
    proc = process or ProcessSpec()
    rng = random.Random(seed)  # the agents' offer decisions
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
    events = 0
    started = time.perf_counter()
    last_progress = -math.inf
    end_hint = max(population.duration_s, 1.0)

    # The conversation of each ticket: who has it since when, and how much work is left in its
    # current phase (phase 1: after its transfer or work order). ``epoch`` makes stale ends
    # of a conversation that moved harmless.
    holder: dict[int, tuple[str, float]] = {}
    remaining = [c.follow_after_s if c.follow_up else c.handle_s for c in customers]
    phase = [0] * len(customers)
    epoch = [0] * len(customers)
    offered: dict[int, tuple[str, int]] = {}  # ticket -> (agent, epoch) while offered
    requeued_at: dict[int, float] = {}
    due: dict[int, float] = {}  # work orders: SLA deadline
    misses: dict[str, int] = {}
    away_until: dict[str, float] = {}
    on_shift: set[str] = set()
    stats = {"transfers": 0, "work_orders": 0, "work_order_sla_breaches": 0,
             "offered": 0, "accepted": 0, "declined": 0, "lapsed": 0, "agents_set_away": 0,
             "handed_to_colleague": 0, "returned_to_line": 0}
    follow_waits: list[float] = []

    def start_conversation(i: int, agent_id: str, now: float) -> None:
        rec = records[i]
        if rec.outcome == "waiting":
            rec.outcome = "served"
            rec.wait_s = now - rec.arrival_s
            rec.agent_id = agent_id
            bin_waits.append(rec.wait_s)
        if i in requeued_at:
            follow_waits.append(now - requeued_at.pop(i))
        holder[i] = (agent_id, now)
        epoch[i] += 1
        kind = _FOLLOW if phase[i] == 0 and customers[i].follow_up else _END
        push(now + remaining[i], kind, (i, epoch[i]))

    def stop_conversation(i: int, now: float) -> str:
        agent_id, since = holder.pop(i)
        remaining[i] = max(0.0, remaining[i] - (now - since))
        epoch[i] += 1
        return agent_id

    def apply(commands: list[Command], now: float) -> None:
        for cmd in commands:
            i = index_of[cmd.ticket_id]
            rec = records[i]
            if isinstance(cmd, ReturnTicket):  # shift end: back to the line
                if offered.pop(i, None) is None:
                    stop_conversation(i, now)
                    rec.state = next_state(rec.state, TicketEvent.AGENT_LOST)
                stats["returned_to_line"] += 1
                requeued_at.setdefault(i, now)
                continue
            if cmd.from_agent_id:  # handed over to a colleague
                stats["handed_to_colleague"] += 1
                if offered.pop(i, None) is None:
                    stop_conversation(i, now)
                    rec.state = next_state(rec.state, TicketEvent.TRANSFERRED_TO_AGENT)
                else:
                    rec.state = next_state(rec.state, TicketEvent.ASSIGNED)
                start_conversation(i, cmd.agent_id, now)
                continue
            if proc.offer_timeout_s > 0:
                stats["offered"] += 1
                offered[i] = (cmd.agent_id, epoch[i])
                u = rng.random()
                if u < proc.decline_share:
                    push(now + proc.decide_s, _OFFER_DECLINED, (i, cmd.agent_id, epoch[i]))
                elif u < proc.decline_share + proc.miss_share:
                    push(now + proc.offer_timeout_s, _OFFER_LAPSED, (i, cmd.agent_id, epoch[i]))
                else:
                    push(now + proc.decide_s, _OFFER_ACCEPTED, (i, cmd.agent_id, epoch[i]))
                continue
            rec.state = next_state(rec.state, TicketEvent.ASSIGNED)
            start_conversation(i, cmd.agent_id, now)

    def feed(event: Event, now: float) -> list[Command]:
        t0 = time.perf_counter()
        out = core.handle(event, now)
        if out:
            decision_ms.append((time.perf_counter() - t0) * 1000.0)
        if check_invariants:
            core.check_invariants()
        return out

    def presence(agent_id: str, now: float) -> None:
        a = agents[agent_id]
        available = agent_id in on_shift and away_until.get(agent_id, -math.inf) <= now
        apply(feed(AgentPresenceChanged(a.agent_id, a.skills, a.capacity, available), now), now)

    def offer_still_open(i: int, agent_id: str, at_epoch: int) -> bool:
        return offered.get(i) == (agent_id, at_epoch)

    if plan_known and population.agents and heap:
        apply(feed(RosterPlanned(tuple(
            PlannedShift(a.agent_id, dict(a.skills), a.capacity, a.from_s,
                         a.to_s if a.planned_to_s is None else a.planned_to_s)
            for a in population.agents)), heap[0][0]), heap[0][0])

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
                est = core.queue_status(c.customer_id, now).estimate
                rec.est_p50_s, rec.est_p90_s = est.p50_s, est.p90_s
                rec.ahead = est.ahead
                for after_s in REESTIMATE_AFTER_S:
                    push(now + after_s, _REESTIMATE, (i, after_s))
            if math.isfinite(c.patience_s):
                push(now + c.patience_s, _ABANDON, i)
            apply(out, now)
        elif kind == _END:
            i, at_epoch = payload
            if at_epoch != epoch[i] or i not in holder:
                continue  # the conversation moved on meanwhile
            rec = records[i]
            agent_id = stop_conversation(i, now)
            if rec.state is TicketState.AWAITING_AGENT:
                rec.state = next_state(rec.state, TicketEvent.AGENT_WROTE)
            rec.state = next_state(rec.state, TicketEvent.AGENT_CLOSED)
            if i in due and now > due.pop(i):
                stats["work_order_sla_breaches"] += 1
            apply(feed(ConversationEnded(agent_id, rec.customer_id, proc.wrap_up_s), now), now)
        elif kind == _FOLLOW:
            i, at_epoch = payload
            if at_epoch != epoch[i] or i not in holder:
                continue
            c, rec = customers[i], records[i]
            agent_id = stop_conversation(i, now)
            phase[i] = 1
            remaining[i] = c.follow_handle_s
            deadline = None
            if c.follow_up == "work_order":
                stats["work_orders"] += 1
                deadline = due[i] = now + proc.work_order_sla_s[c.priority]
            else:
                stats["transfers"] += 1
            rec.state = next_state(rec.state, TicketEvent.TRANSFERRED_TO_QUEUE)
            requeued_at[i] = now
            apply(feed(TicketRequeued(rec.customer_id, agent_id, c.follow_skill,
                                      deadline_s=deadline), now), now)
        elif kind in (_OFFER_ACCEPTED, _OFFER_DECLINED, _OFFER_LAPSED):
            i, agent_id, at_epoch = payload
            if not offer_still_open(i, agent_id, at_epoch):
                continue
            del offered[i]
            rec = records[i]
            if kind == _OFFER_ACCEPTED:
                stats["accepted"] += 1
                misses[agent_id] = 0
                rec.state = next_state(rec.state, TicketEvent.ASSIGNED)
                start_conversation(i, agent_id, now)
                continue
            stats["declined" if kind == _OFFER_DECLINED else "lapsed"] += 1
            apply(feed(TicketRequeued(rec.customer_id, agent_id, pause_s=proc.offer_pause_s),
                       now), now)
            if kind == _OFFER_LAPSED:
                misses[agent_id] = misses.get(agent_id, 0) + 1
                if proc.offer_misses_to_away and misses[agent_id] >= proc.offer_misses_to_away:
                    misses[agent_id] = 0
                    stats["agents_set_away"] += 1
                    away_until[agent_id] = now + proc.away_s
                    presence(agent_id, now)
                    push(now + proc.away_s, _AGENT_BACK, agent_id)
        elif kind == _AGENT_BACK:
            if agents[payload].agent_id in on_shift:
                presence(payload, now)
        elif kind == _ABANDON:
            i = payload
            rec = records[i]
            wake = core.next_wakeup_s()
            if wake is not None and wake <= now:
                # A timer due at this very instant (say, a relaxation step) comes first.
                apply(feed(ClockTicked(), now), now)
            if rec.outcome != "waiting":
                continue
            if i in offered:  # left while an agent was deciding: the offered slot frees
                agent_id, _ = offered.pop(i)
                apply(feed(ConversationEnded(agent_id, rec.customer_id), now), now)
            elif core.is_waiting(rec.customer_id):
                feed(TicketLeft(rec.customer_id), now)
            else:
                continue
            rec.state = next_state(rec.state, TicketEvent.CUSTOMER_LEFT)
            rec.outcome = "abandoned"
            rec.wait_s = now - rec.arrival_s
        elif kind == _SHIFT_START:
            on_shift.add(payload)
            presence(payload, now)
        elif kind == _SHIFT_END:
            on_shift.discard(payload)
            if proc.shift_end == "hand-over" and payload in core.capacity:
                apply(feed(AgentShiftEnded(payload), now), now)
            else:
                presence(payload, now)
        elif kind == _WAKEUP:
            scheduled_wakeup = math.inf
            apply(feed(ClockTicked(), now), now)
        elif kind == _REESTIMATE:
            i, after_s = payload
            rec = records[i]
            if rec.outcome == "waiting" and core.is_waiting(rec.customer_id):
                est = core.queue_status(rec.customer_id, now).estimate
                rec.reestimates.append((after_s, est.p50_s, est.p90_s))
        elif kind == _SAMPLE:
            ordered = sorted(bin_waits)
            p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if ordered else 0.0
            timeline.append(TimelinePoint(now - bin_s, core.waiting_count(), len(holder),
                                          bin_arrivals, p90))
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
    stats["work_order_sla_breaches"] += len(due)  # still open at the end
    if progress is not None:
        progress(end_hint, end_hint)
    ordered_follow = sorted(follow_waits)
    process_report: dict[str, Any] = dict(stats)
    process_report["requeued_wait_s"] = {
        "count": len(ordered_follow),
        "p50": ordered_follow[len(ordered_follow) // 2] if ordered_follow else 0.0,
        "p90": ordered_follow[min(len(ordered_follow) - 1, int(0.9 * len(ordered_follow)))]
        if ordered_follow else 0.0,
    }
    return SimulationResult(records, timeline, decision_ms, events, time.perf_counter() - started,
                            {"statistics": core.statistics(), "process": process_report})
