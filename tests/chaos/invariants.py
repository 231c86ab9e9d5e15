"""The invariants of "nothing lost", checked from the journal after a fault.

* every acknowledged ticket and message is in the journal, each message exactly once;
* every ticket's history is a chain of legal state transitions;
* no ticket is assigned twice (this workload has no transfers), and every assignment a ticket
  records is one that a replay of the routing journal makes: memory never left the journal;
* no agent ever held more tickets than its capacity;
* every acknowledged ticket was served and closed;
* the watch streams, resumed from their cursors across the fault, delivered every entry of
  their stream once, in order.
"""

from __future__ import annotations

import collections
import math

import redis

from surgedesk.adapters.redis.dispatch_journal import STREAM as DISPATCH_STREAM
from surgedesk.adapters.redis.dispatch_journal import decode as decode_routing
from surgedesk.adapters.redis.journal import agent_stream, decode, stream_key
from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.errors import SurgedeskError
from surgedesk.engine.events import AssignTicket
from surgedesk.engine.lifecycle import TicketEvent, TicketState, next_state
from surgedesk.engine.policies import policy_named
from surgedesk.engine.ticket import MessagePosted, StateMoved, TicketAssigned, TicketOpened, apply
from tests.chaos.surge import Ledger


def ticket_events(client: redis.Redis, ticket_id: str) -> list:
    return [(entry_id.decode(), decode(fields[b"e"]))
            for entry_id, fields in client.xrange(stream_key(ticket_id))]


def check(redis_url: str, ledger: Ledger, *, capacity: int, policy: str) -> dict:
    client = redis.Redis.from_url(redis_url)
    for failure in ledger.failures:  # what a failed call's ticket went through
        ticket_id = failure.split()[1].split("/")[0].rstrip(":")
        if ticket_id.startswith("t-"):
            print(failure, [(type(e).__name__, getattr(e, "agent_id", ""), round(e.at_s % 1000, 3))
                            for _, e in ticket_events(client, ticket_id)])
    assert ledger.tickets, "the surge acknowledged no ticket"
    histories = {t: ticket_events(client, t) for t in ledger.tickets.values()}

    # Nothing lost: every acknowledged ticket and message is there; a message exactly once.
    keys = collections.Counter()
    for ticket_id, entries in histories.items():
        events = [e for _, e in entries]
        assert events and isinstance(events[0], TicketOpened), f"{ticket_id} lost"
        for e in events:
            if isinstance(e, MessagePosted) and e.idempotency_key:
                keys[(ticket_id, e.idempotency_key)] += 1
    for ack in ledger.messages:
        assert keys[ack] == 1, f"message {ack} is in the journal {keys[ack]} times"
    assert set(keys) >= ledger.messages

    # Legal transitions only; at most one assignment per ticket; holding intervals.
    holds: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    assigned_to: dict[str, str] = {}
    for ticket_id, entries in histories.items():
        record = None
        start = None
        for _, event in entries:
            if isinstance(event, StateMoved):
                assert record is not None and record.state.value == event.from_state, (
                    ticket_id, event)
                to = next_state(TicketState(event.from_state), TicketEvent[event.cause])
                assert to.value == event.to_state, (ticket_id, event)
            if isinstance(event, TicketAssigned):
                assert ticket_id not in assigned_to, f"{ticket_id} assigned twice: " + str([
                    (type(e).__name__, getattr(e, "agent_id", ""), round(e.at_s % 1000, 3))
                    for _, e in entries])
                assigned_to[ticket_id] = event.agent_id
                start = event.at_s
            record = apply(record, event)
            if start is not None and not record.is_open:
                holds[assigned_to[ticket_id]].append((start, event.at_s))
                start = None
        assert record is not None and record.state is TicketState.CLOSED, (
            f"{ticket_id} ended {record.state if record else None}, not served and closed")
        assert ticket_id in ledger.closed

    # No agent over capacity: sweep each agent's holding intervals (a release before an
    # assignment at the same instant).
    peak = {}
    for agent_id, intervals in holds.items():
        marks = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
        load = top = 0
        for _, step in marks:
            load += step
            top = max(top, load)
        assert top <= capacity, f"{agent_id} held {top} tickets at once (capacity {capacity})"
        peak[agent_id] = top

    # Routing never drifted from its journal: a replay assigns each ticket to its agent.
    core = DispatcherCore(policy_named(policy))
    replayed: dict[str, set[str]] = collections.defaultdict(set)
    applied_at = -math.inf  # entries apply at the latest time seen (writers' clocks differ)
    for _, fields in client.xrange(DISPATCH_STREAM):
        event, now_s = decode_routing(fields[b"e"])
        applied_at = max(applied_at, now_s)
        try:
            commands = core.handle(event, applied_at)
        except SurgedeskError:
            continue
        for cmd in commands:
            if isinstance(cmd, AssignTicket):
                replayed[cmd.ticket_id].add(cmd.agent_id)
    for ticket_id, agent_id in assigned_to.items():
        assert agent_id in replayed[ticket_id], (
            f"{ticket_id} went to {agent_id}; a replay of routing says {replayed[ticket_id]}")

    # Streams resumed from their cursors: every entry once, in order, none missing.
    for agent_id, seen in ledger.agent_cursors.items():
        _exactly_the_stream(client, agent_stream(agent_id), seen, agent_id)
    for ticket_id, seen in ledger.watch_cursors.items():
        _exactly_the_stream(client, stream_key(ticket_id), seen, ticket_id)
    assert not ledger.failures, ledger.failures[:10]
    return {"tickets": len(histories), "messages": len(ledger.messages), "peak_load": peak,
            "retries": dict(ledger.retries)}


def _exactly_the_stream(client: redis.Redis, key: str, seen: list[str], who: str) -> None:
    assert len(seen) == len(set(seen)), f"{who}: the stream repeated an entry after resuming"
    assert seen == sorted(seen, key=lambda c: tuple(int(p) for p in c.split("-"))), who
    if not seen:
        return
    stored = [entry_id.decode() for entry_id, _ in client.xrange(key, max=seen[-1])]
    assert seen == stored, f"{who}: got {len(seen)} entries, the stream has {len(stored)}"
