import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.engine.errors import IllegalTransition
from surgedesk.engine.lifecycle import (
    TERMINAL_STATES,
    TRANSITIONS,
    TicketEvent,
    TicketState,
    allowed_events,
    next_state,
)

S, E = TicketState, TicketEvent


def test_there_are_exactly_the_six_states_of_the_design():
    assert {s.value for s in TicketState} == {
        "QUEUED", "AWAITING_AGENT", "AWAITING_CUSTOMER", "AWAITING_CONFIRMATION", "CLOSED",
        "SYSTEM_CLOSED",
    }


@pytest.mark.parametrize(
    ("state", "event", "expected"),
    [
        (S.QUEUED, E.ASSIGNED, S.AWAITING_AGENT),
        (S.QUEUED, E.CUSTOMER_LEFT, S.SYSTEM_CLOSED),
        (S.AWAITING_AGENT, E.AGENT_WROTE, S.AWAITING_CUSTOMER),
        (S.AWAITING_AGENT, E.TRANSFERRED_TO_QUEUE, S.QUEUED),
        (S.AWAITING_AGENT, E.TRANSFERRED_TO_AGENT, S.AWAITING_AGENT),
        (S.AWAITING_CUSTOMER, E.CUSTOMER_WROTE, S.AWAITING_AGENT),
        (S.AWAITING_CUSTOMER, E.REMINDER_SENT, S.AWAITING_CUSTOMER),
        (S.AWAITING_CUSTOMER, E.SILENCE_TIMED_OUT, S.SYSTEM_CLOSED),
        (S.AWAITING_CUSTOMER, E.CLOSE_REQUESTED, S.AWAITING_CONFIRMATION),
        (S.AWAITING_CONFIRMATION, E.RESOLVED, S.CLOSED),
        (S.AWAITING_CONFIRMATION, E.NOT_RESOLVED, S.AWAITING_AGENT),
        (S.AWAITING_CONFIRMATION, E.CONFIRMATION_TIMED_OUT, S.CLOSED),
    ],
)
def test_the_service_process_moves_as_the_design_describes(state, event, expected):
    assert next_state(state, event) is expected


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES, key=lambda s: s.value))
def test_closed_tickets_accept_no_event(terminal):
    assert allowed_events(terminal) == frozenset()
    for event in TicketEvent:
        with pytest.raises(IllegalTransition):
            next_state(terminal, event)


def test_an_illegal_event_raises_a_typed_error_naming_state_and_event():
    with pytest.raises(IllegalTransition) as info:
        next_state(S.QUEUED, E.RESOLVED)
    assert info.value.state == "QUEUED" and info.value.event == "RESOLVED"
    assert "RESOLVED" in str(info.value) and "QUEUED" in str(info.value)


@given(st.lists(st.sampled_from(list(TicketEvent)), max_size=40))
def test_any_event_sequence_only_ever_takes_legal_transitions(events):
    state = S.QUEUED
    for event in events:
        before = state
        try:
            state = next_state(state, event)
        except IllegalTransition:
            assert (before, event) not in TRANSITIONS
            assert state is before  # unchanged
        else:
            assert TRANSITIONS[(before, event)] is state
        if before in TERMINAL_STATES:
            assert state is before


def test_every_open_state_can_reach_an_end():
    for state in TicketState:
        if state in TERMINAL_STATES:
            continue
        reachable, frontier = {state}, [state]
        while frontier:
            s = frontier.pop()
            for event in allowed_events(s):
                nxt = next_state(s, event)
                if nxt not in reachable:
                    reachable.add(nxt)
                    frontier.append(nxt)
        assert reachable & TERMINAL_STATES, state
