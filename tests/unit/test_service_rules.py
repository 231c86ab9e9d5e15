"""The service process's rules, pure: thresholds, ticket timers, offers, what events count for."""


import pytest

from surgedesk.engine.agent import ChangePresence, ProfileAgent, RecordOffer
from surgedesk.engine.agent import apply as agent_apply
from surgedesk.engine.agent import decide as agent_decide
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.outcomes import WAIT_BUCKETS_S, bucket_of, counts
from surgedesk.engine.service_rules import ServiceRules
from surgedesk.engine.ticket import (
    AssignAgent,
    NoticeSent,
    OfferTicket,
    OfferWithdrawn,
    OpenTicket,
    OpenWorkOrder,
    PostMessage,
    RequestClose,
    SlowReplyAlarmed,
    StateMoved,
    WorkOrderBreached,
    apply,
    decide,
    due_events,
    next_deadline,
    open_ticket,
    replay,
)

RULES = ServiceRules(slow_reply_alarm_s=60, slow_reply_reroute_s=300, silence_reminder_s=120,
                     silence_close_s=240, confirmation_timeout_s=90, queue_wait_cap_s=600,
                     queue_target_s=180)


def ticket(now=0.0):
    return replay(open_ticket(OpenTicket("t1", "c1", "app", "presale", 0, "hi"), now))


def step(record, cmd, now):
    for e in decide(record, cmd, now):
        record = apply(record, e)
    return record


def fire(record, now, rules=RULES):
    events = due_events(record, rules, now)
    for e in events:
        record = apply(record, e)
    return record, events


def test_rules_refuse_bad_values_naming_the_field():
    with pytest.raises(InvalidArgument) as bad:
        ServiceRules(silence_reminder_s=-1)
    assert bad.value.field == "silence_reminder_s"
    with pytest.raises(InvalidArgument) as order:
        ServiceRules(silence_reminder_s=300, silence_close_s=200)
    assert order.value.field == "silence_close_s"
    with pytest.raises(InvalidArgument) as unknown:
        ServiceRules.from_mapping({"silence_reminder": 3})
    assert unknown.value.field == "service.silence_reminder"
    with pytest.raises(InvalidArgument) as sla:
        ServiceRules.from_mapping({"work_order_sla_s": {"high": 0}})
    assert sla.value.field == "service.work_order_sla_s.high"
    rules = ServiceRules.from_mapping({"work_order_sla_s": {"high": 60}, "supervisors": ["s"]})
    assert rules.sla_s("high") == 60 and rules.sla_s("low") == 8 * 3600
    assert rules.supervisors == ("s",) and not rules.offers


def test_a_silent_customer_is_reminded_once_then_closed():
    r = step(step(ticket(), AssignAgent("ann", 0), 1.0), PostMessage("agent", "ann", "hi"), 2.0)
    assert next_deadline(r, RULES) == 2.0 + 120
    r, events = fire(r, 100.0)
    assert events == []
    r, events = fire(r, 122.0)
    assert [type(e) for e in events] == [NoticeSent] and r.reminded
    assert next_deadline(r, RULES) == 2.0 + 240
    r, events = fire(r, 242.0)
    assert r.state.value == "SYSTEM_CLOSED" and r.close_reason == "silent customer"
    assert next_deadline(r, RULES) is None


def test_an_agent_message_restarts_the_silence():
    r = step(step(ticket(), AssignAgent("ann", 0), 1.0), PostMessage("agent", "ann", "hi"), 2.0)
    r = step(r, PostMessage("agent", "ann", "still there?"), 100.0)
    assert next_deadline(r, RULES) == 100.0 + 120


def test_slow_reply_alarm_then_reroute():
    r = step(ticket(), AssignAgent("ann", 0), 10.0)
    r, events = fire(r, 70.0)
    assert events == [SlowReplyAlarmed("ann", 60.0, 70.0)] and r.alarmed
    r, events = fire(r, 310.0)
    assert r.state.value == "QUEUED" and r.agent_id == "" and r.last_agent_id == "ann"
    assert isinstance(events[-1], StateMoved) and events[-1].cause == "AGENT_LOST"


def test_an_agent_reply_stops_the_slow_reply_clock():
    r = step(ticket(), AssignAgent("ann", 0), 10.0)
    r = step(r, PostMessage("agent", "ann", "on it"), 50.0)
    r, events = fire(r, 400.0, ServiceRules(**{**RULES.__dict__, "silence_reminder_s": 0,
                                               "silence_close_s": 0}))
    assert events == [] and r.state.value == "AWAITING_CUSTOMER"


def test_confirmation_times_out_into_closed():
    r = step(step(ticket(), AssignAgent("ann", 0), 1.0), RequestClose("ann"), 5.0)
    r, _ = fire(r, 95.0)
    assert r.state.value == "CLOSED" and r.close_reason == "no answer to the close request"


def test_queue_warning_then_cap_but_not_for_work_orders():
    r = ticket()
    r, events = fire(r, 180.0)
    assert [e.code for e in events] == ["queue_wait_over_target"]
    r, events = fire(r, 600.0)
    assert r.state.value == "SYSTEM_CLOSED" and r.close_reason.startswith("abandoned")
    wo = step(step(ticket(), AssignAgent("ann", 0), 1.0),
              OpenWorkOrder("ann", "wo-t1", "finance", "high", "refund", 7201.0), 2.0)
    assert wo.state.value == "QUEUED" and wo.skill == "finance"
    assert next_deadline(wo, RULES) == 7201.0  # only the SLA: no cap, no queue warning
    wo, events = fire(wo, 7201.0)
    assert events == [WorkOrderBreached(7201.0)] and wo.work_order.breached
    assert wo.state.value == "QUEUED" and next_deadline(wo, RULES) is None


def test_an_offer_lapses_at_its_deadline():
    r = step(ticket(), OfferTicket("ann", 30.0), 1.0)
    assert r.offered_to == "ann" and r.state.value == "QUEUED"
    assert next_deadline(r, RULES) == 30.0
    r, events = fire(r, 30.0)
    assert events == [OfferWithdrawn("ann", "timeout", 30.0)] and not r.offered_to


def test_missed_offers_in_a_row_set_the_agent_away_and_an_accept_resets_them():
    record = None
    for cmd in (ProfileAgent("ann", {"presale": 1.0}, 2), ChangePresence("online"),
                RecordOffer(False, 2)):
        for e in agent_decide(record, cmd, 1.0):
            record = agent_apply(record, e)
    assert record.missed_offers == 1 and record.presence == "online"
    for e in agent_decide(record, RecordOffer(True, 2), 2.0):
        record = agent_apply(record, e)
    assert record.missed_offers == 0
    for _ in range(2):
        for e in agent_decide(record, RecordOffer(False, 2), 3.0):
            record = agent_apply(record, e)
    assert record.presence == "away"
    assert agent_decide(record, RecordOffer(True, 2), 4.0)  # the run is reset
    for e in agent_decide(record, ChangePresence("online"), 5.0):
        record = agent_apply(record, e)
    assert record.missed_offers == 0


def test_events_count_for_outcomes_and_queue_waits():
    before = ticket(0.0)
    events = decide(before, AssignAgent("ann", 0.0), 95.0)
    after = before
    for e in events:
        after = apply(after, e)
    got = counts(before, events, after)
    assert ("tickets_total", (("outcome", "served"),), 1.0) in got
    assert ("queue_wait_seconds_bucket", (("skill", "presale"), ("le", "120")), 1.0) in got
    assert ("queue_wait_seconds_sum", (("skill", "presale"),), 95.0) in got
    assert bucket_of(180.0) == "180" and bucket_of(1e6) == "+Inf" and bucket_of(0.0) == "1"
    assert list(WAIT_BUCKETS_S) == sorted(WAIT_BUCKETS_S) and 180.0 in WAIT_BUCKETS_S
