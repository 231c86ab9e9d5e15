"""The ticket aggregate: the service process of one conversation, as events."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.engine.errors import IllegalTransition, InvalidArgument, PermissionDenied
from surgedesk.engine.lifecycle import TRANSITIONS, TicketEvent, TicketState
from surgedesk.engine.service_rules import ServiceRules
from surgedesk.engine.ticket import (
    AcceptOffer,
    AssignAgent,
    CloseTicket,
    ConfirmResolution,
    InviteCollaborator,
    LeaveQueue,
    MessagePosted,
    OfferTicket,
    OpenTicket,
    OpenWorkOrder,
    PostMessage,
    RateTicket,
    RequestClose,
    ReturnToQueue,
    StateMoved,
    TransferToQueue,
    WarnQueue,
    WithdrawOffer,
    apply,
    decide,
    due_events,
    event_from_dict,
    event_to_dict,
    next_deadline,
    open_ticket,
    replay,
)

S = TicketState


def opened(**kw):
    cmd = OpenTicket(**{"ticket_id": "t1", "customer_id": "c1", "channel": "app",
                        "skill": "presale", "first_message": "hello", **kw})
    return replay(open_ticket(cmd, 0.0))


def step(record, cmd, now=1.0):
    events = decide(record, cmd, now)
    for e in events:
        record = apply(record, e)
    return record, events


def test_a_new_ticket_is_queued_with_its_first_message():
    r = opened()
    assert r.state is S.QUEUED and r.messages == 1 and r.agent_id == ""


def test_the_whole_conversation_resolved():
    r = opened()
    r, _ = step(r, AssignAgent("ann", 12.0))
    assert r.state is S.AWAITING_AGENT and r.agent_id == "ann"
    r, _ = step(r, PostMessage("agent", "ann", "how can I help?"))
    assert r.state is S.AWAITING_CUSTOMER
    r, _ = step(r, PostMessage("customer", "c1", "my order"))
    assert r.state is S.AWAITING_AGENT
    r, _ = step(r, RequestClose("ann"))
    assert r.state is S.AWAITING_CONFIRMATION
    r, events = step(r, ConfirmResolution("c1", True))
    assert r.state is S.CLOSED and r.close_reason == "resolved"
    assert events == [StateMoved("AWAITING_CONFIRMATION", "CLOSED", "RESOLVED", "resolved", 1.0)]
    r, _ = step(r, RateTicket("c1", 5, "quick"))
    assert r.rating == 5


def test_not_resolved_reactivates_with_the_same_agent():
    r = opened()
    for cmd in (AssignAgent("ann", 1.0), PostMessage("agent", "ann", "done?"), RequestClose("ann")):
        r, _ = step(r, cmd)
    r, _ = step(r, ConfirmResolution("c1", False))
    assert r.state is S.AWAITING_AGENT and r.agent_id == "ann"


def test_a_customer_who_leaves_the_queue_is_system_closed_as_abandoned():
    r, _ = step(opened(), LeaveQueue("c1"))
    assert r.state is S.SYSTEM_CLOSED and r.close_reason == "abandoned"


def test_nobody_acts_on_a_ticket_that_is_not_theirs():
    r, _ = step(opened(), AssignAgent("ann", 1.0))
    with pytest.raises(PermissionDenied):
        decide(r, PostMessage("customer", "intruder", "hi"), 2.0)
    with pytest.raises(PermissionDenied):
        decide(r, PostMessage("agent", "bob", "hi"), 2.0)
    with pytest.raises(PermissionDenied):
        decide(r, CloseTicket("bob"), 2.0)
    with pytest.raises(PermissionDenied):
        decide(opened(), LeaveQueue("intruder"), 2.0)


def test_illegal_steps_are_refused_and_cause_nothing():
    r = opened()
    with pytest.raises(IllegalTransition):
        decide(r, ConfirmResolution("c1", True), 1.0)
    r, _ = step(r, LeaveQueue("c1"))
    with pytest.raises(IllegalTransition):
        decide(r, PostMessage("customer", "c1", "hello again"), 2.0)
    with pytest.raises(IllegalTransition):
        decide(opened(), RateTicket("c1", 4), 1.0)


@pytest.mark.parametrize(
    ("cmd", "field"),
    [
        (OpenTicket("", "c1", "app", "s"), "ticket_id"),
        (OpenTicket("t", "", "app", "s"), "customer_id"),
        (OpenTicket("t", "c", "fax", "s"), "channel"),
        (OpenTicket("t", "c", "app", ""), "skill"),
        (OpenTicket("t", "c", "app", "s", vip_tier=10), "vip_tier"),
        (OpenTicket("t", "c", "app", "s", first_message="x" * 5000), "first_message"),
        (OpenTicket("t" * 200, "c", "app", "s"), "ticket_id"),
    ],
)
def test_bad_input_names_the_field(cmd, field):
    with pytest.raises(InvalidArgument) as info:
        open_ticket(cmd, 0.0)
    assert info.value.field == field


def test_empty_messages_and_bad_scores_are_refused():
    r, _ = step(opened(), AssignAgent("ann", 1.0))
    with pytest.raises(InvalidArgument) as info:
        decide(r, PostMessage("customer", "c1", "   "), 1.0)
    assert info.value.field == "text"
    r, _ = step(r, CloseTicket("ann"))
    with pytest.raises(InvalidArgument) as info:
        decide(r, RateTicket("c1", 9), 1.0)
    assert info.value.field == "score"


def test_a_retried_message_or_assignment_causes_nothing():
    r, _ = step(opened(), AssignAgent("ann", 1.0))
    r, first = step(r, PostMessage("customer", "c1", "hi", idempotency_key="k1"))
    assert len(first) == 1 and isinstance(first[0], MessagePosted)
    assert decide(r, PostMessage("customer", "c1", "hi", idempotency_key="k1"), 2.0) == []
    assert decide(r, AssignAgent("ann", 1.0), 2.0) == []
    assert r.message_keys["k1"] == first[0].message_id


def test_a_message_from_another_channel_moves_the_ticket_there():
    r, _ = step(opened(), AssignAgent("ann", 1.0))
    r, _ = step(r, PostMessage("customer", "c1", "from the web now", channel="web"))
    assert r.channel == "web"


def test_events_survive_a_round_trip_through_plain_dicts():
    r = opened()
    events = open_ticket(OpenTicket("t1", "c1", "app", "presale", 2, "hi"), 0.0)
    events += decide(replay(events), AssignAgent("ann", 3.5), 4.0)
    again = [event_from_dict(event_to_dict(e)) for e in events]
    assert again == events
    assert replay(again) == replay(events)
    assert r.messages == 1


commands = st.one_of(
    st.builds(PostMessage, st.sampled_from(["customer", "agent"]),
              st.sampled_from(["c1", "ann", "bob"]), st.just("text"),
              idempotency_key=st.sampled_from(["", "k1", "k2"])),
    st.builds(AssignAgent, st.sampled_from(["ann", "bob"]), st.floats(0, 100)),
    st.builds(LeaveQueue, st.sampled_from(["c1", "c2"])),
    st.builds(RequestClose, st.sampled_from(["ann", "bob"])),
    st.builds(ConfirmResolution, st.just("c1"), st.booleans()),
    st.builds(CloseTicket, st.sampled_from(["ann", "bob"])),
    st.builds(RateTicket, st.just("c1"), st.integers(0, 6)),
    st.builds(TransferToQueue, st.sampled_from(["ann", "bob"]), st.sampled_from(["billing"]),
              st.just("summary")),
    st.builds(ReturnToQueue, st.sampled_from(["ann", "bob"]), st.just("shift ended")),
    st.builds(OfferTicket, st.sampled_from(["ann", "bob"]), st.floats(0, 100)),
    st.builds(AcceptOffer, st.sampled_from(["ann", "bob"])),
    st.builds(WithdrawOffer, st.sampled_from(["ann", "bob"]), st.just("declined")),
    st.builds(InviteCollaborator, st.sampled_from(["ann", "bob"]), st.sampled_from(["xu", "ann"])),
    st.builds(OpenWorkOrder, st.sampled_from(["ann", "bob"]), st.just("wo-1"),
              st.just("finance"), st.sampled_from(["high", "low"]), st.just("refund"),
              st.floats(0, 100)),
    st.builds(WarnQueue, st.floats(0, 500), st.floats(0, 900), st.just(180.0)),
    st.floats(0.0, 50.0),  # time passes: the due timers fire
)
RULES = ServiceRules(slow_reply_alarm_s=5, slow_reply_reroute_s=20, silence_reminder_s=5,
                     silence_close_s=15, confirmation_timeout_s=10, queue_wait_cap_s=40,
                     queue_target_s=8)


@given(st.lists(commands, max_size=30))
def test_any_command_sequence_only_takes_legal_transitions_and_replays_exactly(cmds):
    record = opened()
    journal = open_ticket(OpenTicket("t1", "c1", "app", "presale", first_message="hello"), 0.0)
    now = 0.0
    for cmd in cmds:
        before = record
        if isinstance(cmd, float):  # timers
            now += cmd
            due = next_deadline(record, RULES)
            events = due_events(record, RULES, now)
            assert bool(events) == (due is not None and due <= now)
        else:
            now += 1.0
            try:
                events = decide(record, cmd, now)
            except (IllegalTransition, PermissionDenied, InvalidArgument):
                assert record is before
                continue
        for e in events:
            if isinstance(e, StateMoved):
                assert (S(e.from_state), TicketEvent(e.cause)) in TRANSITIONS
                assert TRANSITIONS[(S(e.from_state), TicketEvent(e.cause))] is S(e.to_state)
                assert S(e.from_state) is record.state
            record = apply(record, e)
        journal += events
        if record.state in (S.AWAITING_AGENT, S.AWAITING_CUSTOMER, S.AWAITING_CONFIRMATION):
            assert record.agent_id and not record.offered_to
        if isinstance(cmd, float):  # a fired timer is gone: the loop that fires them ends
            after = next_deadline(record, RULES)
            assert after is None or after > now
    assert replay(journal) == record
