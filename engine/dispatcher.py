"""The dispatcher core: every routing decision of one routing domain.

Who runs this: the ``dispatcher`` Ray actor in production and the virtual-time simulator in
benchmarks -- the same object, single-threaded, fed by :meth:`DispatcherCore.handle`.

Theory of operation
-------------------
Tickets and agents tell the core facts (:mod:`surgedesk.engine.events`); the core answers with
:class:`~surgedesk.engine.events.AssignTicket` commands. It never does I/O and never reads a clock:
every call brings ``now_s``, which must not go backwards.

* Each skill has one line (:class:`TicketQueue`) ordered by the priority key ``(class, due,
  seq)``. Within a class the due time is the arrival time, so a class's head is also its
  longest-waiting ticket.
* Relaxation: a ticket that has waited ``steps[r].after_s`` is in ring ``r`` and may go to agents
  whose proficiency reaches ``steps[r].min_proficiency``. Since the head of a class waited
  longest, an agent that qualifies from ring ``r`` finds its best ticket by walking the classes
  present, best first, and taking the first class head that has waited long enough -- no ticket
  ever moves between queues. (In deadline-ordered work-order classes the head is the most
  urgent ticket, and it is that ticket's wait that opens the class to further rings.)
* A ticket waiting for a preferred (sticky) agent sits in that agent's own queue until its window
  closes, then joins the skill's line at its arrival place.
* On arrival the core picks the best free agent for the ticket's ring (:class:`CapacityIndex`);
  on freed capacity it picks, for that agent, the preferred ticket if any, else the best ticket
  it qualifies for across its skills.
* Timers live in one heap with lazy deletion and run at the start of every :meth:`handle` call;
  :meth:`next_wakeup_s` tells the driver when to send a
  :class:`~surgedesk.engine.events.ClockTicked`. A sticky window closing is a timer of its ticket. A
  relaxation step coming due matters only to an agent that is already idle (a busy agent checks the
  waits when it frees up), so there is no timer per ticket: while an agent idles that qualifies for
  a skill only from a later ring, the skill has one *wake* timer, set for the moment the next class
  head reaches a new ring. A saturated desk runs no relaxation timers at all.

Guarantees, checked by :meth:`check_invariants` and the property tests: a ticket is assigned at
most once and never to two agents; an agent never gets a ticket without a free slot; no
available agent with a free slot idles while a ticket it qualifies for waits; within a priority
class tickets leave in arrival order.

Costs (n waiting tickets, a agents, k skills of an agent, R rings, C priority classes present --
a handful each): arrival O(log n + R + k log a); freed capacity O(k C log n + k log a); leave
O(log n); relaxation step O(R); estimate O(log n).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from surgedesk.engine.capacity import AgentState, CapacityIndex, validate_agent
from surgedesk.engine.errors import (
    AgentUnavailable,
    AlreadyExists,
    InvalidArgument,
    NotHeld,
    NotWaiting,
)
from surgedesk.engine.estimator import SkillFlow, WaitEstimate, estimate_wait
from surgedesk.engine.events import (
    AgentPresenceChanged,
    AgentShiftEnded,
    AssignTicket,
    ClockTicked,
    Command,
    ConversationEnded,
    Event,
    PolicyChanged,
    ReturnTicket,
    RosterPlanned,
    SkillConfigured,
    TicketHandedOver,
    TicketLeft,
    TicketQueued,
    TicketRequeued,
)
from surgedesk.engine.policies import AgentSelection, RelaxationSteps, RoutingPolicy, StickyPolicy
from surgedesk.engine.queues import TicketQueue, pack_key
from surgedesk.engine.roster import Roster

_WAKE_TIMER = 0  # ident: a skill
_PREFER_TIMER = 1  # ident: a ticket
_WRAP_TIMER = 2  # ident: an agent whose wrap-up of one conversation ends
_PAUSE_TIMER = 3  # ident: an agent whose pause after a declined offer ends


# In overload a customer with at least this many ahead is told at least what the head of
# their class has waited (DispatcherCore._at_least_head_wait); with fewer, the queue length
# says more than one head's wait does.
HEAD_WAIT_MIN_AHEAD = 10


@dataclass(frozen=True, slots=True)
class EstimatorConfig:
    """How the core measures flow for estimates (see :mod:`surgedesk.engine.estimator`)."""

    tau_s: float = 300.0  # forgetting time constant of the measured rates
    prior_handle_s: float = 300.0  # expected handle time before any conversation has ended
    handle_s_by_skill: Mapping[str, float] = field(default_factory=dict)
    rate_cv: float = 0.12  # relative uncertainty of the measured service rate
    # The waits customers are told, scaled: 1 is honest; below 1 rehearses the honesty alert
    # (``surgedesk serve --estimate-scale``): the desk's live coverage leaves its band.
    shown_scale: float = 1.0


@dataclass(slots=True)
class WaitingTicket:
    ticket_id: str
    skill: str
    vip_tier: int
    key: int  # packed queue key (surgedesk.engine.queues.pack_key)
    arrival_s: float
    queued_s: float
    preferred_agent_id: str | None = None
    prefer_until_s: float = -math.inf
    in_line: bool = False  # in the skill's line, as opposed to waiting for a preferred agent
    deadline_s: float | None = None  # work orders: due time, earliest first


@dataclass(frozen=True, slots=True)
class QueueStatus:
    ticket_id: str
    skill: str
    vip_tier: int
    estimate: WaitEstimate
    agents_serving: int
    waiting_for_agent_id: str | None


@dataclass(frozen=True, slots=True)
class SkillStatistics:
    skill: str
    waiting: int
    busy: int
    slots: int
    agents: int
    service_rate_per_s: float
    abandon_rate_per_s: float


@dataclass(frozen=True, slots=True)
class DispatcherStatistics:
    now_s: float
    waiting: int
    agents: int
    available_agents: int
    busy_slots: int
    assignments_total: int
    timers_pending: int
    skills: tuple[SkillStatistics, ...]


class DispatcherCore:
    """Lines, capacity index, timers and estimator of one routing domain."""

    def __init__(
        self, policy: RoutingPolicy | None = None, estimator: EstimatorConfig | None = None
    ) -> None:
        self.policy = policy or RoutingPolicy()
        self.estimator = estimator or EstimatorConfig()
        self._relax = self.policy.relaxation
        self.capacity = CapacityIndex(self._relax, self.policy.selection)
        self._lines: dict[str, TicketQueue] = {}  # skill -> its line
        self._preferred: dict[str, TicketQueue] = {}  # agent -> tickets waiting for it
        self._tickets: dict[str, WaitingTicket] = {}
        self._flows: dict[str, SkillFlow] = {}
        self._timers: list[tuple[float, int, int, str]] = []
        self._wake_at: dict[str, float] = {}  # skill -> its live wake timer
        self._seq = 0
        self._timer_seq = 0
        self._now_s = -math.inf
        self._undelivered: list[Command] = []
        self._handle_priors: dict[str, float] = dict(self.estimator.handle_s_by_skill)
        self._held: dict[str, WaitingTicket] = {}  # assigned tickets, to requeue them in place
        # An agent as it declared itself (skills, capacity, available); wrap-up and pauses
        # after declined offers are taken off it before it reaches the capacity index.
        self._declared: dict[str, tuple[dict[str, float], int, bool]] = {}
        self._wrapping: dict[str, list[float]] = {}  # agent -> wrap-up end times
        self._paused_until: dict[str, float] = {}
        self.assignments_total = 0
        self.roster = Roster()  # the staffing plan ahead: estimates are stretched by it

    # ================================================================ the one entry point
    def handle(self, event: Event, now_s: float) -> list[Command]:
        """Apply one event at time ``now_s``; return the resulting assignments.

        Due timers run first. On a bad event this raises an :mod:`surgedesk.engine.errors` error and
        the event changes nothing; the timers have run all the same (they depend on time alone), and
        the assignments they made are not lost: they are returned by the next call.
        """
        if not math.isfinite(now_s):
            raise InvalidArgument("now_s", "must be finite")
        if now_s < self._now_s:
            raise InvalidArgument("now_s", f"clock went backwards: {now_s} < {self._now_s}")
        self._now_s = now_s
        out: list[Command] = self._undelivered
        self._undelivered = []
        self._run_timers(now_s, out)
        try:
            if isinstance(event, TicketQueued):
                self._on_queued(event, now_s, out)
            elif isinstance(event, ConversationEnded):
                self._on_ended(event, now_s, out)
            elif isinstance(event, TicketLeft):
                self._on_left(event, now_s)
            elif isinstance(event, AgentPresenceChanged):
                self._on_presence(event, now_s, out)
            elif isinstance(event, SkillConfigured):
                self._on_skill(event)
            elif isinstance(event, PolicyChanged):
                self._on_policy(event, now_s, out)
            elif isinstance(event, TicketRequeued):
                self._on_requeued(event, now_s, out)
            elif isinstance(event, TicketHandedOver):
                self._on_handed_over(event, now_s, out)
            elif isinstance(event, AgentShiftEnded):
                self._on_shift_ended(event, now_s, out)
            elif isinstance(event, RosterPlanned):
                self._on_roster(event)
            elif not isinstance(event, ClockTicked):
                raise InvalidArgument("event", f"unknown event type {type(event).__name__}")
        except Exception:
            self._undelivered = out
            raise
        return out

    def next_wakeup_s(self) -> float | None:
        """When the earliest pending timer is due, or None. Stale timers are dropped here."""
        timers = self._timers
        while timers and not self._timer_live(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    # ================================================================ queries
    def is_waiting(self, ticket_id: str) -> bool:
        return ticket_id in self._tickets

    def waiting_ticket(self, ticket_id: str) -> WaitingTicket:
        try:
            return self._tickets[ticket_id]
        except KeyError:
            raise NotWaiting(ticket_id) from None

    def waiting_count(self, skill: str | None = None) -> int:
        if skill is None:
            return len(self._tickets)
        flow = self._flows.get(skill)
        return flow.waiting if flow else 0

    def skills(self) -> list[str]:
        return sorted(set(self._flows) | self.capacity.skills())

    def queue_order(self, skill: str) -> list[str]:
        """The ticket ids of a skill's line in service order (sticky waits excluded). O(n)."""
        line = self._lines.get(skill)
        return [tid for _, tid in line] if line else []

    def queue_status(self, ticket_id: str, now_s: float) -> QueueStatus:
        """Position and wait estimate of a waiting ticket. O(log n)."""
        t = self.waiting_ticket(ticket_id)
        flow = self._flow_at(t.skill, max(now_s, self._now_s))
        if t.preferred_agent_id is not None:
            agent = self.capacity.get(t.preferred_agent_id)
            mu = flow.completion_rate_per_slot()
            ahead = self._preferred[t.preferred_agent_id].rank(t.key)
            own = estimate_wait(ahead, max(len(agent.active), 1) * mu,
                                rate_cv=self.estimator.rate_cv)
            rest = max(0.0, t.prefer_until_s - now_s)
            # After the window the ticket joins the line at its arrival place.
            line = self._estimate(flow, self._line_rank(t), t.vip_tier, max(now_s, self._now_s),
                                  now_s - t.queued_s)
            est = WaitEstimate(
                ahead=ahead,
                position=min(own.position, line.position),
                mean_s=min(own.mean_s, rest + line.mean_s),
                p50_s=min(own.p50_s, rest + line.p50_s),
                p90_s=min(own.p90_s, rest + line.p90_s),
            )
        else:
            est = self._estimate(flow, self._line_rank(t), t.vip_tier, max(now_s, self._now_s),
                                 now_s - t.queued_s)
        if self.estimator.shown_scale != 1.0:
            k = self.estimator.shown_scale
            est = dataclasses.replace(est, mean_s=est.mean_s * k, p50_s=est.p50_s * k,
                                      p90_s=est.p90_s * k)
        return QueueStatus(
            ticket_id=t.ticket_id,
            skill=t.skill,
            vip_tier=t.vip_tier,
            estimate=est,
            agents_serving=self.capacity.serving_agents(t.skill),
            waiting_for_agent_id=t.preferred_agent_id,
        )

    def estimate_new(self, skill: str, vip_tier: int, now_s: float) -> WaitEstimate:
        """The estimate a customer of ``skill`` and ``vip_tier`` arriving now would get."""
        flow = self._flow_at(skill, max(now_s, self._now_s))
        if self.capacity.best(skill, self._relax.ring_at(0.0)) is not None:
            return WaitEstimate(0, 0, 0.0, 0.0, 0.0)
        line = self._lines.get(skill)
        ahead = line.rank(pack_key((-vip_tier, now_s, self._seq))) if line else 0
        return self._estimate(flow, ahead, vip_tier, max(now_s, self._now_s))

    def skill_report(self, now_s: float) -> list[dict[str, float | int | str]]:
        """Per skill: line, capacity, measured rates and a new regular customer's estimate."""
        rows: list[dict[str, float | int | str]] = []
        for stats in self.statistics().skills:
            est = self.estimate_new(stats.skill, 0, now_s)
            rows.append({
                "skill": stats.skill, "waiting": stats.waiting, "busy_slots": stats.busy,
                "serving_slots": stats.slots, "agents_serving": stats.agents,
                "wait_p50_s": est.p50_s, "wait_p90_s": est.p90_s,
                "service_rate_per_s": stats.service_rate_per_s,
                "abandon_rate_per_s": stats.abandon_rate_per_s,
            })
        return rows

    def flow(self, skill: str) -> SkillFlow:
        """The skill's measured flow as of the core's clock (a view: changes nothing)."""
        return self._flow_at(skill, self._now_s)

    def statistics(self) -> DispatcherStatistics:
        skills = []
        for skill in self.skills():
            flow = self._flow_at(skill, self._now_s)
            skills.append(
                SkillStatistics(
                    skill=skill,
                    waiting=flow.waiting,
                    busy=self.capacity.busy(skill),
                    slots=self.capacity.serving_slots(skill),
                    agents=self.capacity.serving_agents(skill),
                    service_rate_per_s=flow.service_rate(0, self.capacity.primary_busy(skill)),
                    abandon_rate_per_s=flow.abandon_rate(),
                )
            )
        agents = list(self.capacity.agents())
        return DispatcherStatistics(
            now_s=self._now_s,
            waiting=len(self._tickets),
            agents=len(agents),
            available_agents=sum(1 for a in agents if a.available),
            busy_slots=sum(len(a.active) for a in agents),
            assignments_total=self.assignments_total,
            timers_pending=len(self._timers),
            skills=tuple(skills),
        )

    # ================================================================ events
    def _on_queued(self, ev: TicketQueued, now_s: float, out: list[Command]) -> None:
        if not ev.ticket_id:
            raise InvalidArgument("ticket_id", "must not be empty")
        if not ev.skill:
            raise InvalidArgument("skill", "must not be empty")
        if ev.ticket_id in self._tickets:
            raise AlreadyExists("waiting ticket", ev.ticket_id)
        holder = self.capacity.holder_of(ev.ticket_id)
        if holder is not None:
            raise AlreadyExists(f"ticket held by agent {holder!r}:", ev.ticket_id)
        arrival_s = now_s if ev.arrival_s is None else float(ev.arrival_s)
        if not math.isfinite(arrival_s) or arrival_s > now_s:
            raise InvalidArgument("arrival_s", "must be finite and not in the future")
        if ev.deadline_s is not None and not math.isfinite(ev.deadline_s):
            raise InvalidArgument("deadline_s", "must be finite")
        window = self.policy.sticky.window_s if ev.prefer_window_s is None else ev.prefer_window_s
        if not (window >= 0 and math.isfinite(window)):
            raise InvalidArgument("prefer_window_s", "must be a finite number >= 0")
        key = self.policy.priority.packed_key(ev.vip_tier, arrival_s, ev.deadline_s, self._seq)
        self._seq += 1
        flow = self._flow(ev.skill)
        flow.advance(now_s)
        flow.count_arrival(ev.vip_tier)
        ring = self._relax.ring_at(now_s - arrival_s)
        t = WaitingTicket(ev.ticket_id, ev.skill, ev.vip_tier, key, arrival_s, now_s,
                          deadline_s=ev.deadline_s)

        preferred = self._preferred_agent(ev.preferred_agent_id, ev.skill)
        if preferred is not None and window > 0:
            if self.capacity.get(preferred).free_slots > 0:
                self._start(t, preferred, now_s, out)
                return
            t.preferred_agent_id = preferred
            t.prefer_until_s = now_s + window
            self._tickets[t.ticket_id] = t
            self._preferred_queue(preferred).add(key, t.ticket_id)
            self._set_waiting(flow, +1, t.vip_tier, t.ticket_id)
            self._push_timer(t.prefer_until_s, _PREFER_TIMER, t.ticket_id)
            return

        agent_id = self.capacity.best(ev.skill, ring)
        if agent_id is not None:
            self._start(t, agent_id, now_s, out)
            return
        self._tickets[t.ticket_id] = t
        self._set_waiting(flow, +1, t.vip_tier, t.ticket_id)
        self._enqueue(t, now_s)

    def _on_ended(self, ev: ConversationEnded, now_s: float, out: list[Command]) -> None:
        if not (math.isfinite(ev.wrap_up_s) and ev.wrap_up_s >= 0):
            raise InvalidArgument("wrap_up_s", "must be a finite number >= 0")
        skill, _since = self.capacity.release(ev.agent_id, ev.ticket_id, relist=False)
        self._held.pop(ev.ticket_id, None)
        flow = self._flow(skill)
        flow.advance(now_s)
        flow.completions += 1.0
        flow.busy -= 1
        if ev.wrap_up_s > 0 and ev.agent_id in self._declared:
            until = now_s + ev.wrap_up_s
            self._wrapping.setdefault(ev.agent_id, []).append(until)
            self._push_timer(until, _WRAP_TIMER, ev.agent_id)
            self._refresh_agent(ev.agent_id, now_s)
        self._fill(ev.agent_id, now_s, out)

    def _on_requeued(self, ev: TicketRequeued, now_s: float, out: list[Command]) -> None:
        """O(log n + k log a): the slot freed, the ticket placed as on arrival."""
        holder = self.capacity.holder_of(ev.ticket_id)
        if holder != ev.agent_id:
            raise NotHeld(ev.ticket_id, ev.agent_id, holder)
        if ev.deadline_s is not None and not math.isfinite(ev.deadline_s):
            raise InvalidArgument("deadline_s", "must be finite")
        if not (math.isfinite(ev.pause_s) and ev.pause_s >= 0):
            raise InvalidArgument("pause_s", "must be a finite number >= 0")
        old = self._held.pop(ev.ticket_id)
        self.capacity.release(ev.agent_id, ev.ticket_id, relist=False)
        flow = self._flow(old.skill)
        flow.advance(now_s)
        flow.completions += 1.0
        flow.busy -= 1
        if ev.pause_s > 0:
            until = now_s + ev.pause_s
            self._paused_until[ev.agent_id] = until
            self._push_timer(until, _PAUSE_TIMER, ev.agent_id)
            self._refresh_agent(ev.agent_id, now_s)
        deadline = ev.deadline_s if ev.deadline_s is not None else old.deadline_s
        self._place(old.ticket_id, ev.skill or old.skill, old.vip_tier, old.arrival_s, deadline,
                    now_s, out)
        self._fill(ev.agent_id, now_s, out)

    def _on_handed_over(self, ev: TicketHandedOver, now_s: float, out: list[Command]) -> None:
        """O(k log a). Checks first, so a refusal changes nothing."""
        holder = self.capacity.holder_of(ev.ticket_id)
        if holder != ev.from_agent_id:
            raise NotHeld(ev.ticket_id, ev.from_agent_id, holder)
        if ev.to_agent_id == ev.from_agent_id:
            raise InvalidArgument("agent_id", "is the agent who holds the ticket")
        if ev.to_agent_id not in self.capacity:
            raise AgentUnavailable(ev.to_agent_id, "is not known to routing (never online)")
        receiver = self.capacity.get(ev.to_agent_id)
        if not receiver.available or receiver.free_slots == 0:
            raise AgentUnavailable(ev.to_agent_id, "is not online with a free slot")
        t = self._held[ev.ticket_id]
        self.capacity.release(ev.from_agent_id, ev.ticket_id, relist=False)
        self.capacity.occupy(ev.to_agent_id, ev.ticket_id, t.skill, now_s)
        out.append(AssignTicket(t.ticket_id, ev.to_agent_id, t.skill, now_s - t.arrival_s,
                                from_agent_id=ev.from_agent_id))
        self._fill(ev.from_agent_id, now_s, out)

    def _on_shift_ended(self, ev: AgentShiftEnded, now_s: float, out: list[Command]) -> None:
        """O(h (log n + k log a)) for h tickets held. Colleagues first, then the lines."""
        agent = self.capacity.get(ev.agent_id)
        skills, capacity, _ = self._declared.get(ev.agent_id, (agent.skills, agent.capacity, False))
        self._declared[ev.agent_id] = (skills, capacity, False)
        self._refresh_agent(ev.agent_id, now_s)
        self._release_sticky(ev.agent_id, now_s, out)
        for ticket_id, (skill, _since) in sorted(agent.active.items(), key=lambda kv: kv[1][1]):
            t = self._held[ticket_id]
            self.capacity.release(ev.agent_id, ticket_id)
            colleague = self.capacity.best(skill, self._relax.ring_at(now_s - t.arrival_s))
            if colleague is not None:
                self.capacity.occupy(colleague, ticket_id, skill, now_s)
                out.append(AssignTicket(ticket_id, colleague, skill, now_s - t.arrival_s,
                                        from_agent_id=ev.agent_id))
                continue
            del self._held[ticket_id]
            flow = self._flow(skill)
            flow.advance(now_s)
            flow.busy -= 1
            # Its original arrival puts it ahead of everyone of its class who came after it.
            self._place(ticket_id, skill, t.vip_tier, t.arrival_s, t.deadline_s, now_s, out)
            out.append(ReturnTicket(ticket_id, ev.agent_id, skill))

    def _place(self, ticket_id: str, skill: str, vip_tier: int, arrival_s: float,
               deadline_s: float | None, now_s: float, out: list[Command]) -> None:
        """A ticket that waited before waits again at its original place. O(log n + R)."""
        key = self.policy.priority.packed_key(vip_tier, arrival_s, deadline_s, self._seq)
        self._seq += 1
        flow = self._flow(skill)
        flow.advance(now_s)
        flow.count_arrival(vip_tier)
        t = WaitingTicket(ticket_id, skill, vip_tier, key, arrival_s, now_s,
                          deadline_s=deadline_s)
        agent_id = self.capacity.best(skill, self._relax.ring_at(now_s - arrival_s))
        if agent_id is not None:
            self._start(t, agent_id, now_s, out)
            return
        self._tickets[ticket_id] = t
        self._set_waiting(flow, +1, vip_tier, ticket_id)
        self._enqueue(t, now_s)

    def _refresh_agent(self, agent_id: str, now_s: float) -> None:
        """Put the agent into the index as declared, less slots in wrap-up and any pause."""
        skills, capacity, available = self._declared[agent_id]
        wrapping = len(self._wrapping.get(agent_id, ()))
        paused = self._paused_until.get(agent_id, -math.inf) > now_s
        self.capacity.upsert(agent_id, skills, max(0, capacity - wrapping),
                             available and not paused)

    def _on_left(self, ev: TicketLeft, now_s: float) -> None:
        t = self.waiting_ticket(ev.ticket_id)
        self._remove_waiting(t)
        flow = self._flow(t.skill)
        flow.advance(now_s)
        flow.abandons += 1.0
        self._set_waiting(flow, -1, t.vip_tier, t.ticket_id, gave_up=True)

    def _on_presence(self, ev: AgentPresenceChanged, now_s: float, out: list[Command]) -> None:
        validate_agent(ev.agent_id, ev.skills, ev.capacity)
        self._declared[ev.agent_id] = (dict(ev.skills), ev.capacity, ev.available)
        self._refresh_agent(ev.agent_id, now_s)
        self._release_sticky(ev.agent_id, now_s, out)
        if self.capacity.get(ev.agent_id).available:
            self._fill(ev.agent_id, now_s, out)

    def _release_sticky(self, agent_id: str, now_s: float, out: list[Command]) -> None:
        """Customers waiting for this agent join their lines at once if it went away or no
        longer qualifies for their skill."""
        queue = self._preferred.get(agent_id)
        if not queue:
            return
        agent = self.capacity.get(agent_id)
        leaving = [tid for _, tid in queue
                   if not agent.available or self._tickets[tid].skill not in agent.rings]
        for tid in leaving:
            t = self._tickets[tid]
            queue.discard(t.key)
            t.preferred_agent_id = None
            self._enqueue(t, now_s)
        if not queue:
            del self._preferred[agent_id]
        for tid in leaving:
            still_waiting = self._tickets.get(tid)
            if still_waiting is not None:
                self._offer(still_waiting, now_s, out)

    def _on_roster(self, ev: RosterPlanned) -> None:
        """O(m log m) for m planned shifts; checks first, so a refusal changes nothing."""
        for i, shift in enumerate(ev.shifts):
            if not (math.isfinite(shift.start_s) and shift.end_s > shift.start_s):
                raise InvalidArgument(f"shifts[{i}]", "must start at a finite time and end "
                                                      "after it starts")
            if shift.capacity < 0 or any(not (0.0 <= p <= 1.0) for p in shift.skills.values()):
                raise InvalidArgument(f"shifts[{i}]", "capacity must be >= 0 and proficiencies "
                                                      "in [0, 1]")
        self.roster = Roster(ev.shifts)

    def _on_skill(self, ev: SkillConfigured) -> None:
        if not ev.skill:
            raise InvalidArgument("skill", "must not be empty")
        if not (math.isfinite(ev.expected_handle_s) and ev.expected_handle_s > 0):
            raise InvalidArgument("expected_handle_s", "must be a finite number > 0")
        self._handle_priors[ev.skill] = ev.expected_handle_s
        self._flow(ev.skill).prior_handle_s = ev.expected_handle_s

    def _on_policy(self, ev: PolicyChanged, now_s: float, out: list[Command]) -> None:
        policy = RoutingPolicy(
            priority=self.policy.priority,
            selection=AgentSelection(ev.selection),
            relaxation=RelaxationSteps(tuple(tuple(step) for step in ev.relaxation)),  # type: ignore[misc]
            sticky=StickyPolicy(ev.sticky_window_s),
        )
        self.policy = policy
        self._relax = policy.relaxation
        self.capacity.reconfigure(policy.relaxation, policy.selection)
        for agent_id in list(self._preferred):
            self._release_sticky(agent_id, now_s, out)
        # Agents may qualify for more now: let every free one look again.
        for agent in list(self.capacity.agents()):
            if agent.available and len(agent.active) < agent.capacity:
                self._fill(agent.agent_id, now_s, out)

    # ================================================================ routing steps
    def _fill(self, agent_id: str, now_s: float, out: list[Command]) -> None:
        """Give a free agent the best tickets it qualifies for until it is full.

        O(k C log n) a pick: k skills of the agent, C priority classes present. The agent is
        re-sorted into the capacity index once, at the end, not after every ticket."""
        agent = self.capacity.get(agent_id)
        try:
            self._fill_unlisted(agent, now_s, out)
        finally:
            self.capacity.relist(agent_id)
        if agent.available and len(agent.active) < agent.capacity:
            # Idle with tickets it may not take yet: wake up when the next one may be taken.
            for skill, ring in agent.rings.items():
                if ring > 0 and self._lines.get(skill):
                    self._arm_wake(skill, now_s)

    def _fill_unlisted(self, agent: AgentState, now_s: float, out: list[Command]) -> None:
        agent_id = agent.agent_id
        active = agent.active
        while agent.available and len(active) < agent.capacity:
            best: tuple[int, str] | None = None
            pref = self._preferred.get(agent_id)
            if pref:
                best = pref.head()
            else:
                for skill, ring in agent.rings.items():
                    found = self._best_in_line(skill, ring, now_s)
                    if found is not None and (best is None or found[0] < best[0]):
                        best = found
            if best is None:
                return
            t = self._tickets[best[1]]
            self._dequeue(t)
            self._start(t, agent_id, now_s, out, relist=False)

    def _best_in_line(self, skill: str, ring: int, now_s: float) -> tuple[int, str] | None:
        """The best ticket of ``skill``'s line that an agent of ``ring`` may take, or None."""
        line = self._lines.get(skill)
        if not line:
            return None
        if ring == 0:
            return line.head()
        reached = self._relax.reached
        tickets = self._tickets
        for cls in line.classes():
            head = line.class_head(cls)
            if head is not None and reached(now_s - tickets[head[1]].arrival_s, ring):
                return head
        return None

    def _offer(self, t: WaitingTicket, now_s: float, out: list[Command]) -> None:
        """``t`` just became takeable by more agents: let the free agents that qualify take
        their best tickets (``t`` or better ones) until none is free or ``t`` is taken."""
        ring = self._relax.ring_at(now_s - t.arrival_s)
        while t.ticket_id in self._tickets:
            agent_id = self.capacity.best(t.skill, ring)
            if agent_id is None:
                return
            self._fill(agent_id, now_s, out)

    def _wake_skill(self, skill: str, now_s: float, out: list[Command]) -> None:
        """Class heads of ``skill`` reached a new ring: free agents that now qualify take
        their best tickets. O(C) per ticket taken, plus O(C) to find nothing more."""
        line = self._lines.get(skill)
        tickets = self._tickets
        progressed = True
        while progressed and line:
            progressed = False
            for cls in line.classes():
                head = line.class_head(cls)
                if head is None:
                    continue
                ring = self._relax.ring_at(now_s - tickets[head[1]].arrival_s)
                agent_id = self.capacity.best(skill, ring) if ring > 0 else None
                if agent_id is not None:
                    self._fill(agent_id, now_s, out)
                    progressed = True
                    break

    def _start(self, t: WaitingTicket, agent_id: str, now_s: float, out: list[Command],
               relist: bool = True) -> None:
        self._tickets.pop(t.ticket_id, None)
        self._held[t.ticket_id] = t
        self.capacity.occupy(agent_id, t.ticket_id, t.skill, now_s, relist)
        flow = self._flow(t.skill)
        flow.advance(now_s)
        flow.busy += 1
        self.assignments_total += 1
        out.append(AssignTicket(t.ticket_id, agent_id, t.skill, now_s - t.arrival_s))

    # ================================================================ line bookkeeping
    def _enqueue(self, t: WaitingTicket, now_s: float) -> None:
        """Put ``t`` into its skill's line. O(log n)."""
        self._line(t.skill).add(t.key, t.ticket_id)
        t.in_line = True
        if self.capacity.has_free_beyond_ring0(t.skill):
            self._arm_wake(t.skill, now_s)

    def _arm_wake(self, skill: str, now_s: float) -> None:
        """Set the skill's wake timer for the next time a class head reaches a new ring."""
        line = self._lines.get(skill)
        if not line:
            return
        relax, tickets = self._relax, self._tickets
        soonest = math.inf
        for cls in line.classes():
            head = line.class_head(cls)
            if head is None:
                continue
            arrival_s = tickets[head[1]].arrival_s
            after = relax.next_after_s(relax.ring_at(now_s - arrival_s))
            if after is not None:
                soonest = min(soonest, arrival_s + after)
        if soonest < self._wake_at.get(skill, math.inf) and math.isfinite(soonest):
            self._wake_at[skill] = soonest
            self._push_timer(soonest, _WAKE_TIMER, skill)

    def _remove_waiting(self, t: WaitingTicket) -> None:
        if t.preferred_agent_id is not None:
            queue = self._preferred.get(t.preferred_agent_id)
            if queue is not None:
                queue.discard(t.key)
        if t.in_line:
            self._lines[t.skill].remove(t.key)
            t.in_line = False
        self._tickets.pop(t.ticket_id, None)

    def _dequeue(self, t: WaitingTicket) -> None:
        """A waiting ticket reaches an agent: out of the line, counted as a service start."""
        self._remove_waiting(t)
        flow = self._flow(t.skill)
        self._set_waiting(flow, -1, t.vip_tier, t.ticket_id)
        flow.count_dequeue(t.vip_tier)

    def _preferred_agent(self, agent_id: str | None, skill: str) -> str | None:
        if agent_id is None or agent_id not in self.capacity:
            return None
        agent = self.capacity.get(agent_id)
        # The last agent must still qualify for the skill under the policy in force.
        return agent_id if agent.available and skill in agent.rings else None

    def _line(self, skill: str) -> TicketQueue:
        line = self._lines.get(skill)
        if line is None:
            line = self._lines[skill] = TicketQueue()
        return line

    def _preferred_queue(self, agent_id: str) -> TicketQueue:
        queue = self._preferred.get(agent_id)
        if queue is None:
            queue = self._preferred[agent_id] = TicketQueue()
        return queue

    def _set_waiting(self, flow: SkillFlow, delta: int, tier: int, ticket_id: str,
                     gave_up: bool = False) -> None:
        """A ticket joined (+1) or left (-1) the skill's waiting count; the patience meter
        hears of it (a ticket joins at its ``queued_s``, which is now). O(T) amortized."""
        flow.advance(self._now_s)
        flow.change_waiting(tier, delta)
        if delta > 0:
            flow.patience.join(ticket_id, self._now_s)
        else:
            flow.patience.leave(ticket_id, self._now_s, gave_up)

    def _flow_at(self, skill: str, now_s: float) -> SkillFlow:
        """A query's view of the skill's flow at ``now_s``: changes nothing in the core (a
        skill not seen yet gets a flow that is not kept). O(T)."""
        flow = self._flows.get(skill)
        return (flow if flow is not None else self._new_flow(skill)).at(now_s)

    def _flow(self, skill: str) -> SkillFlow:
        flow = self._flows.get(skill)
        if flow is None:
            flow = self._flows[skill] = self._new_flow(skill)
        return flow

    def _new_flow(self, skill: str) -> SkillFlow:
        cfg = self.estimator
        return SkillFlow(skill=skill, tau_s=cfg.tau_s,
                         prior_handle_s=self._handle_priors.get(skill, cfg.prior_handle_s))

    # ================================================================ timers
    def _push_timer(self, at_s: float, kind: int, ticket_id: str) -> None:
        heapq.heappush(self._timers, (at_s, self._timer_seq, kind, ticket_id))
        self._timer_seq += 1

    def _timer_live(self, timer: tuple[float, int, int, str]) -> bool:
        at_s, _, kind, ident = timer
        if kind == _WAKE_TIMER:
            return self._wake_at.get(ident) == at_s
        if kind == _WRAP_TIMER:
            return at_s in self._wrapping.get(ident, ())
        if kind == _PAUSE_TIMER:
            return self._paused_until.get(ident) == at_s
        t = self._tickets.get(ident)
        return t is not None and t.preferred_agent_id is not None

    def _run_timers(self, now_s: float, out: list[Command]) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now_s:
            timer = heapq.heappop(timers)
            if not self._timer_live(timer):
                continue
            if timer[2] == _WAKE_TIMER:
                skill = timer[3]
                del self._wake_at[skill]
                self._wake_skill(skill, now_s, out)
                if self.capacity.has_free_beyond_ring0(skill):
                    self._arm_wake(skill, now_s)
                continue
            if timer[2] in (_WRAP_TIMER, _PAUSE_TIMER):
                agent_id = timer[3]
                if timer[2] == _WRAP_TIMER:
                    ends = self._wrapping[agent_id]
                    ends.remove(timer[0])
                    if not ends:
                        del self._wrapping[agent_id]
                else:
                    del self._paused_until[agent_id]
                self._refresh_agent(agent_id, now_s)
                self._release_sticky(agent_id, now_s, out)
                if self.capacity.get(agent_id).available:
                    self._fill(agent_id, now_s, out)
                continue
            t = self._tickets[timer[3]]
            queue = self._preferred.get(t.preferred_agent_id or "")
            if queue is not None:
                queue.discard(t.key)
            t.preferred_agent_id = None
            self._enqueue(t, now_s)
            self._offer(t, now_s, out)

    # ================================================================ estimates
    def _line_rank(self, t: WaitingTicket) -> int:
        line = self._lines.get(t.skill)
        return line.rank(t.key) if line else 0

    def _estimate(self, flow: SkillFlow, ahead: int, vip_tier: int, now_s: float,
                  waited_s: float = 0.0) -> WaitEstimate:
        """The wait model's estimate at the drain of ``now_s`` (``flow`` is the skill's flow
        then) for a customer with ``ahead`` in line who has waited ``waited_s``; in overload
        at least the rest of the head of the line's wait (:meth:`_at_least_head_wait`); and
        stretched by the staffing plan ahead if there is one (a shift that ends before the
        customer is reached slows the line down, one that begins speeds it up:
        :mod:`surgedesk.engine.roster`). O(T + C + log B) for T tiers, C priority classes and
        B bands of patience, plus O(log shifts) with a plan."""
        if flow.busy == 0 and self.capacity.serving_slots(flow.skill) == 0:
            # Nobody serves this skill: an honest estimate is "unknown", not a number.
            return WaitEstimate(ahead, ahead, math.inf, math.inf, math.inf)
        service_rate, counted_cv = flow.drain(vip_tier, self.capacity.primary_busy(flow.skill))
        overtake_rate = flow.overtake_rate(vip_tier)
        if overtake_rate >= service_rate:  # starved by the classes above: unknown
            return WaitEstimate(ahead, ahead, math.inf, math.inf, math.inf)
        rate_cv = math.hypot(self.estimator.rate_cv, counted_cv)
        abandon_rate = flow.abandon_rate()
        patience = flow.patience.cumulative(now_s, abandon_rate)
        oldest = self._oldest_waited(flow.skill, vip_tier, now_s) if patience.any() else 0.0
        est = estimate_wait(ahead, service_rate, abandon_rate, overtake_rate, rate_cv=rate_cv,
                            patience=patience, oldest_s=oldest, waited_s=max(0.0, waited_s))
        if ahead >= HEAD_WAIT_MIN_AHEAD and flow.arrival_rate(vip_tier) >= service_rate:
            est = self._at_least_head_wait(est, flow.skill, vip_tier, now_s, waited_s)
        if not self.roster:
            return est
        skill, stretch = flow.skill, self.roster.stretch
        return dataclasses.replace(est, mean_s=stretch(skill, now_s, est.mean_s),
                                   p50_s=stretch(skill, now_s, est.p50_s),
                                   p90_s=stretch(skill, now_s, est.p90_s))

    def _oldest_waited(self, skill: str, vip_tier: int, now_s: float) -> float:
        """How long the longest-waiting ticket of ``vip_tier`` or above in ``skill``'s line
        has waited. O(C) for C priority classes."""
        line = self._lines.get(skill)
        if not line:
            return 0.0
        tickets = self._tickets
        oldest = 0.0
        for cls in line.classes():
            if -cls < vip_tier:
                continue
            head = line.class_head(cls)
            if head is not None and head[1] in tickets:
                oldest = max(oldest, now_s - tickets[head[1]].queued_s)
        return oldest

    def _at_least_head_wait(self, est: WaitEstimate, skill: str, vip_tier: int,
                            now_s: float, waited_s: float) -> WaitEstimate:
        """In overload (tickets of this tier and above arrive at least as fast as they are
        served, so the line grows or is held only by those who give up) a new customer waits
        at least about as long as the head of their class has waited so far: Ibrahim and
        Whitt's head-of-line delay predictor, which holds in overload whatever the patience
        and however the drain rate moves -- exactly where the drain model is weakest; a
        customer who has waited already is told at least the rest of it (the head's wait less
        their own). The estimate is raised to it, the p90 by the model's own p90 / p50. O(1)."""
        line = self._lines.get(skill)
        head = line.class_head(-vip_tier) if line else None
        if head is None or head[1] not in self._tickets:
            return est
        # a customer who has waited ``waited_s`` already has that much less of it ahead
        waited = now_s - self._tickets[head[1]].queued_s - max(0.0, waited_s)
        if not (waited > est.p50_s and est.p50_s > 0 and math.isfinite(est.p90_s)):
            return est
        spread = est.p90_s / est.p50_s
        return dataclasses.replace(est, mean_s=max(est.mean_s, waited), p50_s=waited,
                                   p90_s=max(est.p90_s, waited * spread))

    # ================================================================ self-checks
    def iter_waiting(self) -> Iterator[WaitingTicket]:
        return iter(self._tickets.values())

    def check_invariants(self) -> None:
        """Raise AssertionError if a routing guarantee is broken. O(n + a k). For tests."""
        now_s = self._now_s
        for t in self._tickets.values():
            if t.preferred_agent_id is None:
                line = self._lines.get(t.skill)
                assert t.in_line and line is not None and t.key in line, f"{t.ticket_id} lost"
            else:
                assert t.key in self._preferred[t.preferred_agent_id], f"{t.ticket_id} lost"
                assert not t.in_line, f"{t.ticket_id} both sticky and in the line"
        for skill, line in self._lines.items():
            for _, tid in line:
                assert tid in self._tickets and self._tickets[tid].skill == skill
        in_lines = sum(len(line) for line in self._lines.values())
        in_sticky = sum(len(q) for q in self._preferred.values())
        assert in_lines + in_sticky == len(self._tickets), "line sizes disagree with tickets"
        seen: dict[str, str] = {}
        held = {tid for a in self.capacity.agents() for tid in a.active}
        assert held == set(self._held), "held tickets disagree with the capacity index"
        for agent in self.capacity.agents():
            for tid in agent.active:
                assert tid not in seen, f"ticket {tid} held by {seen.get(tid)} and {agent.agent_id}"
                assert tid not in self._tickets, f"ticket {tid} both waiting and assigned"
                seen[tid] = agent.agent_id
            if not agent.available or agent.free_slots == 0:
                continue
            assert not self._preferred.get(agent.agent_id), f"{agent.agent_id} idles (sticky)"
            for skill, ring in agent.rings.items():
                waiting = self._best_in_line(skill, ring, now_s)
                assert waiting is None, f"{agent.agent_id} idles while {waiting} ({skill}) waits"
        for skill, flow in self._flows.items():
            assert flow.busy == self.capacity.busy(skill), f"busy count of {skill}"
            primary = sum(
                len(a.active) for a in self.capacity.agents()
                if a.available and a.rings.get(skill) == 0
            )
            assert primary == self.capacity.primary_busy(skill), f"primary busy of {skill}"
            assert flow.waiting == sum(1 for t in self._tickets.values() if t.skill == skill)
