"""What a ticket's events count for: outcomes, alarms, breaches, ratings, queue waits.

Who runs this: the ticket actor, which stores these increments in the same atomic step that
journals the events (:mod:`surgedesk.adapters.redis.journal`), so a counter moves exactly once per
event however often a gateway restarts; the metrics endpoint reads the totals.

``counts(before, events, after)`` is pure: ``[(metric, labels, amount)]``. Metric names are the
Prometheus names without the ``surgedesk_`` prefix; the queue-wait histogram is kept as
per-bucket counts (``queue_wait_seconds_bucket`` with an ``le`` label holding the bucket's upper
bound), made cumulative when exposed.
"""

from __future__ import annotations

import bisect

from surgedesk.engine.ticket import (
    Event,
    MessagePosted,
    NoticeSent,
    OfferWithdrawn,
    SlowReplyAlarmed,
    StateMoved,
    TicketAssigned,
    TicketOffered,
    TicketOpened,
    TicketRated,
    TicketRecord,
    TicketTransferred,
    WorkOrderBreached,
    WorkOrderOpened,
)

# Seconds to tens of minutes, dense around the 180 s target.
WAIT_BUCKETS_S = (1.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 150.0, 180.0, 210.0,
                  240.0, 300.0, 420.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0)

Count = tuple[str, tuple[tuple[str, str], ...], float]

_OUTCOME_OF_CAUSE = {
    "CUSTOMER_LEFT": "abandoned",
    "QUEUE_TIMED_OUT": "abandoned",
    "SILENCE_TIMED_OUT": "system_closed",
    "RESOLVED": "resolved",
    "CONFIRMATION_TIMED_OUT": "closed_unconfirmed",
    "AGENT_CLOSED": "closed",
    "CUSTOMER_CLOSED": "closed",
    "AGENT_LOST": "requeued",
}


def bucket_of(wait_s: float) -> str:
    """The ``le`` label of the first bucket that holds ``wait_s``. O(log buckets)."""
    i = bisect.bisect_left(WAIT_BUCKETS_S, wait_s)
    return f"{WAIT_BUCKETS_S[i]:g}" if i < len(WAIT_BUCKETS_S) else "+Inf"


def counts(before: TicketRecord | None, events: list[Event], after: TicketRecord) -> list[Count]:
    out: list[Count] = []
    skill = after.skill
    state_since = before.state_since_s if before is not None else 0.0
    queued = before is not None and before.state.value == "QUEUED"
    for e in events:
        if isinstance(e, TicketOpened):
            out.append(("tickets_total", (("outcome", "opened"),), 1.0))
        elif isinstance(e, TicketAssigned) and queued:
            wait = max(0.0, e.at_s - state_since)
            labels = (("skill", skill),)
            out.append(("tickets_total", (("outcome", "served"),), 1.0))
            out.append(("queue_wait_seconds_bucket", (*labels, ("le", bucket_of(wait))), 1.0))
            out.append(("queue_wait_seconds_sum", labels, wait))
            out.append(("queue_wait_seconds_count", labels, 1.0))
            if before is not None and before.offered_to == e.agent_id:
                out.append(("offers_total", (("outcome", "accepted"),), 1.0))
        elif isinstance(e, StateMoved) and e.from_state != e.to_state:
            outcome = _OUTCOME_OF_CAUSE.get(e.cause)
            if outcome is not None:
                out.append(("tickets_total", (("outcome", outcome),), 1.0))
        elif isinstance(e, TicketTransferred):
            out.append(("tickets_total", (("outcome", "transferred"),), 1.0))
        elif isinstance(e, WorkOrderOpened):
            out.append(("work_orders_total", (("department", e.department),
                                              ("priority", e.priority)), 1.0))
        elif isinstance(e, WorkOrderBreached):
            wo = after.work_order
            assert wo is not None
            out.append(("work_order_sla_breaches_total", (("department", wo.department),
                                                          ("priority", wo.priority)), 1.0))
        elif isinstance(e, SlowReplyAlarmed):
            out.append(("slow_reply_alarms_total", (("skill", skill),), 1.0))
        elif isinstance(e, NoticeSent):
            out.append(("notices_total", (("code", e.code),), 1.0))
        elif isinstance(e, TicketOffered):
            out.append(("offers_total", (("outcome", "offered"),), 1.0))
        elif isinstance(e, OfferWithdrawn):
            out.append(("offers_total", (("outcome", e.reason),), 1.0))
        elif isinstance(e, TicketRated):
            out.append(("ratings_total", (("score", str(e.score)),), 1.0))
        elif isinstance(e, MessagePosted):
            out.append(("messages_total", (("author_role", e.author_role),), 1.0))
    return out
