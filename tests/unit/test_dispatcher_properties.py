"""Routing invariants as hypothesis properties, over random desks and event sequences.

After every step: a ticket never has two agents and is assigned at most once, no agent is given
a ticket without a free slot, no available agent with a free slot idles while a ticket it
qualifies for waits (``DispatcherCore.check_invariants``), and within a priority class tickets
leave each line in arrival order. A failing run prints its seed (``print_blob``).

Beside the core runs a twin, restarted now and then from the core's snapshot (the version-1
document of :mod:`surgedesk.engine.snapshot`, through msgpack as Redis stores it): every event
goes to both, and both must answer the same and end in the same state, to the last bit.
"""

import msgpack
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.errors import AgentUnavailable, NotWaiting
from surgedesk.engine.events import (
    AgentPresenceChanged,
    AgentShiftEnded,
    AssignTicket,
    ClockTicked,
    ConversationEnded,
    PolicyChanged,
    ReturnTicket,
    TicketHandedOver,
    TicketLeft,
    TicketQueued,
    TicketRequeued,
)
from surgedesk.engine.policies import POLICY_PRESETS
from surgedesk.engine.snapshot import core_from, snapshot_of

SKILLS = ["presale", "aftersale", "billing"]
AGENTS = [f"a{i}" for i in range(5)]
proficiency = st.sampled_from([0.3, 0.5, 1.0])


def _us(seconds: float) -> int:
    """A due time as the queue orders it: closer than a microsecond, arrival order decides."""
    return round(seconds * 1_000_000)


class DispatcherMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.core = DispatcherCore(POLICY_PRESETS["bullseye"])
        self.twin = DispatcherCore(POLICY_PRESETS["bullseye"])
        self.restarts = 0
        self.now = 0.0
        self.next_id = 0
        self.assigned: dict[str, str] = {}  # ticket -> agent, for all time
        self.arrivals: dict[str, tuple[str, int, float, int]] = {}  # ticket -> skill, tier, due, n
        self.capacity: dict[str, int] = {}
        self.available: dict[str, bool] = {}
        self.active: dict[str, set[str]] = {a: set() for a in AGENTS}
        self.sticky_to: dict[str, set[str]] = {}  # agent -> tickets that asked for it
        self.wrapping: dict[str, list[float]] = {a: [] for a in AGENTS}  # wrap-up end times
        self.paused_until: dict[str, float] = {}

    def _apply(self, out):
        for cmd in out:
            if isinstance(cmd, ReturnTicket):
                assert cmd.ticket_id in self.active[cmd.agent_id]
                self.active[cmd.agent_id].discard(cmd.ticket_id)
                del self.assigned[cmd.ticket_id]
                assert self.core.is_waiting(cmd.ticket_id) or self.core.capacity.holder_of(
                    cmd.ticket_id) is not None
                continue
            assert isinstance(cmd, AssignTicket)
            agent = cmd.agent_id
            assert self.available.get(agent), f"{agent} is not available"
            assert self.paused_until.get(agent, -1) <= self.now, f"{agent} is paused"
            wrapping = sum(1 for until in self.wrapping[agent] if until > self.now)
            assert len(self.active[agent]) + wrapping < self.capacity[agent], f"{agent} over capacity"
            if cmd.from_agent_id:  # handed over: it moves, nobody else has it
                assert self.assigned.get(cmd.ticket_id) == cmd.from_agent_id
                self.active[cmd.from_agent_id].discard(cmd.ticket_id)
                self.assigned[cmd.ticket_id] = agent
                self.active[agent].add(cmd.ticket_id)
                continue
            assert cmd.ticket_id not in self.assigned, f"{cmd.ticket_id} assigned twice"
            # Priority, then arrival order: once this ticket is taken, no ticket of the same
            # skill with a higher tier, or the same tier and an earlier arrival, may still wait
            # in the line -- unless this agent could not take it (not relaxed enough yet).
            skill, tier, due, n = self.arrivals[cmd.ticket_id]
            ring = self.core.capacity.get(agent).rings[skill]
            relax = self.core.policy.relaxation
            sticky = self.core.capacity.get(agent)  # a sticky ticket may jump the line
            for other in self.core.iter_waiting():
                if other.skill == skill and other.in_line:
                    o_skill, o_tier, o_due, o_n = self.arrivals[other.ticket_id]
                    # (due times count to the microsecond, as the queue keeps them)
                    if (-o_tier, _us(o_due), o_n) < (-tier, _us(due), n) and relax.reached(
                        self.now - other.arrival_s, ring
                    ) and cmd.ticket_id not in self.sticky_to.get(sticky.agent_id, ()):
                        raise AssertionError(f"{cmd.ticket_id} overtook {other.ticket_id}")
            self.assigned[cmd.ticket_id] = agent
            self.active[agent].add(cmd.ticket_id)

    def _send(self, event):
        try:
            out = self.core.handle(event, self.now)
        except Exception as exc:
            with pytest.raises(type(exc)):
                self.twin.handle(event, self.now)
            raise
        assert self.twin.handle(event, self.now) == out, "the restarted twin decided otherwise"
        self._apply(out)

    @rule(agent=st.sampled_from(AGENTS),
          skills=st.dictionaries(st.sampled_from(SKILLS), proficiency, min_size=1, max_size=3),
          capacity=st.integers(0, 3), available=st.booleans())
    def presence(self, agent, skills, capacity, available):
        self.capacity[agent] = capacity
        self.available[agent] = available
        self._send(AgentPresenceChanged(agent, skills, capacity, available))

    @rule(skill=st.sampled_from(SKILLS), tier=st.integers(0, 2),
          requeued_by=st.one_of(st.none(), st.floats(0, 100)),
          preferred=st.one_of(st.none(), st.sampled_from(AGENTS)),
          window=st.floats(0, 50))
    def arrival(self, skill, tier, requeued_by, preferred, window):
        tid = f"t{self.next_id}"
        self.next_id += 1
        arrival = max(0.0, self.now - requeued_by) if requeued_by is not None else self.now
        self.arrivals[tid] = (skill, tier, arrival, self.next_id)
        if preferred is not None:
            self.sticky_to.setdefault(preferred, set()).add(tid)
        self._send(TicketQueued(tid, skill, tier, arrival_s=arrival, preferred_agent_id=preferred,
                                prefer_window_s=window))

    def _held(self, data):
        agent = data.draw(st.sampled_from(sorted(a for a, s in self.active.items() if s)))
        return agent, data.draw(st.sampled_from(sorted(self.active[agent])))

    @precondition(lambda self: any(self.active.values()))
    @rule(data=st.data(), wrap_up=st.sampled_from([0.0, 0.0, 5.0, 30.0]))
    def conversation_ends(self, data, wrap_up):
        agent, ticket = self._held(data)
        self.active[agent].discard(ticket)
        if wrap_up:
            self.wrapping[agent].append(self.now + wrap_up)
        self._send(ConversationEnded(agent, ticket, wrap_up))

    @precondition(lambda self: any(self.active.values()))
    @rule(data=st.data(), skill=st.sampled_from(["", *SKILLS]), pause=st.sampled_from([0.0, 10.0]))
    def agent_lets_go(self, data, skill, pause):
        """Transfer to a skill, slow-reply re-route or declined offer: back in line, in place."""
        agent, ticket = self._held(data)
        self.active[agent].discard(ticket)
        del self.assigned[ticket]
        _, tier, due, _ = self.arrivals[ticket]
        self.next_id += 1  # queued again: the core gives it a new sequence number
        self.arrivals[ticket] = (skill or self.arrivals[ticket][0], tier, due, self.next_id)
        if pause:
            self.paused_until[agent] = self.now + pause
        self._send(TicketRequeued(ticket, agent, skill, pause_s=pause))
        assert self.core.is_waiting(ticket) or self.core.capacity.holder_of(ticket) is not None

    @precondition(lambda self: any(self.active.values()))
    @rule(data=st.data(), to=st.sampled_from(AGENTS))
    def named_transfer(self, data, to):
        agent, ticket = self._held(data)
        try:
            self._send(TicketHandedOver(ticket, agent, to))
        except AgentUnavailable:
            assert self.core.capacity.holder_of(ticket) == agent  # refused: nothing changed
        except Exception as exc:  # the receiver is the holder itself
            assert to == agent, exc

    @precondition(lambda self: any(self.active.values()))
    @rule(data=st.data())
    def shift_ends(self, data):
        agent, _ = self._held(data)
        self.available[agent] = False
        held = self.core.capacity.get(agent).active
        for tid in sorted(held, key=lambda t: held[t][1]):  # the core requeues in this order
            self.next_id += 1
            skill, tier, due, _ = self.arrivals[tid]
            self.arrivals[tid] = (skill, tier, due, self.next_id)
        self._send(AgentShiftEnded(agent))
        assert not self.active[agent]

    @rule(data=st.data())
    def customer_leaves(self, data):
        waiting = sorted(t.ticket_id for t in self.core.iter_waiting())
        if not waiting:
            return
        tid = data.draw(st.sampled_from(waiting))
        self._send(TicketLeft(tid))
        assert not self.core.is_waiting(tid)

    @rule(preset=st.sampled_from(sorted(POLICY_PRESETS)))
    def operator_changes_policy(self, preset):
        policy = POLICY_PRESETS[preset]
        self._send(PolicyChanged(policy.relaxation.steps, policy.selection.mode,
                                 policy.sticky.window_s))

    @rule(seconds=st.floats(0.01, 200))
    def time_passes(self, seconds):
        target = self.now + seconds
        while (wake := self.core.next_wakeup_s()) is not None and wake <= target:
            self.now = max(self.now, wake)
            self._send(ClockTicked())
        self.now = target
        self._send(ClockTicked())

    @rule()
    def leaving_an_assigned_ticket_is_refused(self):
        if self.assigned:
            tid = sorted(self.assigned)[0]
            try:
                self._send(TicketLeft(tid))
            except NotWaiting:
                pass
            else:
                raise AssertionError("an assigned ticket left the line")

    @rule()
    def dispatcher_restarts_from_its_snapshot(self):
        stored = msgpack.packb(snapshot_of(self.core), use_bin_type=True)
        self.twin = core_from(msgpack.unpackb(stored, raw=False))
        self.restarts += 1

    @invariant()
    def the_twin_is_the_same_core(self):
        assert snapshot_of(self.twin) == snapshot_of(self.core)

    @invariant()
    def routing_guarantees_hold(self):
        self.core.check_invariants()
        for agent, tickets in self.active.items():
            for tid in tickets:
                assert self.core.capacity.holder_of(tid) == agent


TestDispatcherInvariants = DispatcherMachine.TestCase
